"""`repwatch crawl` on two sites where one complaint appears on both: one incident, one Slack thread, one resolve."""
from __future__ import annotations

import json
import textwrap
from datetime import timedelta

from sqlalchemy import create_engine, select

from demo.server import SiteServer
from demo.sitegen import SiteReview, schema_org_page, trustpilot_pages
from demo.slack_receiver import SlackReceiver
from models.db import session_factory
from models.tables import Review
from monitor.service.work import Actor, set_status
from tests.cli import run_cli
from tests.e2e.conftest import NOW, TOKEN

DOMAIN = "acme.example"
COMPLAINT = ("I ordered a birthday cake for my daughter on Monday and paid for next-day delivery. It arrived on "
             "Thursday, squashed, after the party. Customer service promised a refund twice and nothing came. "
             "I will never order from this bakery again.")
REPOST = ("Paid for next-day delivery of a birthday cake for my daughter, ordered on Monday. It arrived on Thursday "
          "squashed, after the party! Customer service promised a refund twice and nothing came. I will never order "
          "from this bakery again. Posting this on every site until they answer.")


def review(n: int, rating: int, hours_ago: float, body: str, author: str, title: str) -> SiteReview:
    return SiteReview(id=f"{n:024x}", author=author, rating=rating, title=title, body=body,
                      published_at=NOW - timedelta(hours=hours_ago), language="en", reply_body=None, reply_at=None)


HISTORY = [review(1, 5, 24 * 30, "Lovely bread and friendly staff, we come every week.", "Old Friend", "Lovely")]


def test_one_complaint_on_two_sites_is_one_incident_in_one_slack_thread_resolved_at_once(tmp_path):
    with SiteServer() as trustpilot, SiteServer() as shop, SlackReceiver(token=TOKEN) as slack:
        shop_url = shop.url_for("/reviews")

        def publish(tp_reviews: list[SiteReview], shop_reviews: list[SiteReview]) -> None:
            for path, body in trustpilot_pages(DOMAIN, tp_reviews).items():
                trustpilot.set_page(path, body)
            shop.set_page("/reviews", schema_org_page("Acme Bakery", shop_reviews, page_url=shop_url))

        config = tmp_path / "config.yaml"
        config.write_text(textwrap.dedent(f"""
            data_dir: {tmp_path / 'data'}
            crawl:
              polite: false
              download_delay: 0
            notifiers:
              slack:
                kind: slack
                token: ${{SLACK_BOT_TOKEN}}
                channel: "#reviews"
                api_url: {slack.api_url}
                min_interval: 0
            businesses:
              - name: Acme Bakery
                notify: [slack]
                sources:
                  - name: acme-trustpilot
                    kind: trustpilot
                    url: {trustpilot.url}/review/{DOMAIN}
                  - name: acme-shop
                    kind: schema_org
                    url: {shop_url}
        """))

        def repwatch(*args: str):
            result = run_cli(*args, "--config", str(config), env={"SLACK_BOT_TOKEN": TOKEN}, cwd=tmp_path)
            assert result.code == 0, result.stderr
            return result

        publish(HISTORY, HISTORY)
        repwatch("crawl")  # each source's first crawl: history, no alerts
        assert slack.messages == []

        first_post = review(10, 1, 20, COMPLAINT, "Jane Doe", "Ruined birthday")
        publish([first_post, *HISTORY], HISTORY)
        repwatch("crawl")
        [alert] = slack.messages
        assert alert["thread_ts"] is None

        publish([first_post, *HISTORY], [review(11, 1, 2, REPOST, "A Google user", "Avoid!"), *HISTORY])
        repwatch("crawl")
        [_, reply] = slack.messages
        assert reply["thread_ts"] == alert["ts"]  # in the first alert's thread, not a new alert in the channel
        assert reply["text"].startswith("🔁 also posted on 127.0.0.1:")  # the shop site is named by its host
        assert "Also posted on 127.0.0.1: the same complaint as the alert above" in json.dumps(
            reply["blocks"], ensure_ascii=False)

        [incident] = [json.loads(line) for line in repwatch("incidents", "--format", "json").stdout.splitlines()]
        assert [p["site"] for p in incident["posts"]] == ["Trustpilot", "127.0.0.1"]
        assert [p["author"] for p in incident["posts"]] == ["Jane Doe", "A Google user"]
        assert "near-duplicate text" in incident["reason"][0]
        shown = repwatch("incidents", "show", str(incident["id"])).stdout
        assert "Jane Doe" in shown and "near-duplicate text" in shown

        engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'repwatch.db'}")
        sessions = session_factory(engine)
        shop_post = next(p["review_id"] for p in incident["posts"] if p["site"] == "127.0.0.1")
        outcome = set_status(sessions, shop_post, "resolved", Actor("ana", "cli"))
        assert len(outcome.reviews) == 2
        with sessions() as session:
            statuses = dict(session.execute(select(Review.author, Review.status)
                                            .where(Review.incident_id == incident["id"])).all())
        assert statuses == {"Jane Doe": "resolved", "A Google user": "resolved"}
        engine.dispose()
        assert repwatch("incidents").stdout.strip() == "no open incidents"
