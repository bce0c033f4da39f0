"""End-to-end plumbing: a local review site, a Slack stand-in, and the `repwatch` command run on them."""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, update

from demo.server import SiteServer
from demo.sitegen import SiteReview, trustpilot_pages
from demo.slack_receiver import SlackReceiver
from models.tables import Delivery
from tests.cli import Result, run_cli

REPO = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC).replace(microsecond=0)
DOMAIN = "acme.example"
TOKEN = "xoxb-e2e-token-123"


def site_review(n: int, rating: int | None, hours_ago: float, body: str | None = None) -> SiteReview:
    return SiteReview(
        id=f"{n:024x}", author=f"Reviewer {n}", rating=rating, title=f"Visit number {n}",
        body=body or f"Review {n}: {'awful, cold food and rude staff' if (rating or 3) <= 2 else 'lovely place'}.",
        published_at=NOW - timedelta(hours=hours_ago), language="en", reply_body=None, reply_at=None,
    )


@dataclass
class Setup:
    site: SiteServer
    slack: SlackReceiver
    config: Path
    tmp: Path

    def crawl(self, *args: str) -> Result:
        return self.repwatch("crawl", *args)

    def repwatch(self, *args: str) -> Result:
        """`repwatch ARGS --config <this config>` in this process, from the test's directory, with the Slack token."""
        config = ["--config", str(self.config)] if args[0] not in ("extract", "score") else []
        return run_cli(*args, *config, env={"SLACK_BOT_TOKEN": TOKEN}, cwd=self.tmp)

    def pass_time(self) -> None:
        """Make every waiting delivery due now, as if its backoff or Retry-After had passed.

        The outbox backs off 30 s, 60 s, … (and honours Retry-After up to an hour); waiting that out for real would
        make a test minutes long without testing anything more. Only the time is skipped: which rows wait, and in
        what order they go, stay as the failed runs left them.
        """
        engine = create_engine(f"sqlite:///{self.tmp / 'data' / 'repwatch.db'}")
        with engine.begin() as db:
            db.execute(update(Delivery).where(Delivery.status == "pending")
                       .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
        engine.dispose()

    def publish(self, reviews: list[SiteReview]) -> None:
        for path, body in trustpilot_pages(DOMAIN, reviews).items():
            self.site.set_page(path, body)

    def page_requests(self) -> list[str]:
        return [r.path for r in self.site.requests if r.path != "/robots.txt"]


def write_config(tmp: Path, site_url: str, slack_api: str, *, business: str = "Acme Coffee",
                 source: tuple[str, str, str] | None = None, alerting: str = "") -> Path:
    """One business with one source (default: the Trustpilot page of DOMAIN) alerting to the local Slack;
    `source` is (name, kind, url), `alerting` extra lines under `alerting:`."""
    name, kind, url = source or ("acme-trustpilot", "trustpilot", f"{site_url}/review/{DOMAIN}")
    config = tmp / "config.yaml"
    config.write_text(textwrap.dedent(f"""
        data_dir: {tmp / 'data'}
        crawl:
          polite: false
          download_delay: 0
        alerting:
          {alerting or "flood_threshold: 5"}
        notifiers:
          slack:
            kind: slack
            token: ${{SLACK_BOT_TOKEN}}
            channel: "#reviews"
            api_url: {slack_api}
            min_interval: 0
        businesses:
          - name: {business}
            notify: [slack]
            sources:
              - name: {name}
                kind: {kind}
                url: {url}
    """))
    return config


@pytest.fixture
def e2e(tmp_path):
    with SiteServer(robots_txt="User-agent: *\nDisallow: /private/\n") as site, SlackReceiver(token=TOKEN) as slack:
        yield Setup(site, slack, write_config(tmp_path, site.url, slack.api_url), tmp_path)
