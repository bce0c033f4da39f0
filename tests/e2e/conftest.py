"""End-to-end plumbing: a local review site, a Slack stand-in, and the real `repwatch` command."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from demo.server import SiteServer
from demo.sitegen import SiteReview, trustpilot_pages
from demo.slack_receiver import SlackReceiver

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


class FollowedProcess:
    """A `repwatch` command as a child process; its stderr read line by line as it comes, for `wait_for`."""

    def __init__(self, args: list[str], *, cwd: Path, timeout: float):
        env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN}
        self.proc = subprocess.Popen([sys.executable, "-m", "monitor", *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
        self.timeout = timeout
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<EOF>")
            self._changed.notify_all()

    def wait_for(self, text: str, count: int = 1) -> list[str]:
        """The first `count` stderr lines containing `text`, waiting for them to be written (or the process to end)."""
        def found() -> list[str] | None:
            hits = [line for line in self.lines if text in line]
            return hits if len(hits) >= count or "<EOF>" in self.lines else None

        with self._changed:
            hits = self._changed.wait_for(found, timeout=self.timeout) or []
        assert len(hits) >= count, f"{len(hits)} of {count} lines with {text!r} in:\n" + "\n".join(self.lines)
        return hits


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@dataclass
class Setup:
    site: SiteServer
    slack: SlackReceiver
    config: Path
    tmp: Path

    def crawl(self, *args: str) -> Result:
        return self.repwatch("crawl", *args)

    def repwatch(self, *args: str) -> Result:
        env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN, "COLUMNS": "200"}
        done = subprocess.run(
            [sys.executable, "-m", "monitor", *args, "--config", str(self.config)] if args[0] not in ("extract", "score")
            else [sys.executable, "-m", "monitor", *args],
            capture_output=True, text=True, env=env, cwd=self.tmp, timeout=120,
        )
        return Result(done.returncode, done.stdout, done.stderr)

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
