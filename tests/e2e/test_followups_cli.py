"""The owner's follow-up loop through the real CLI: a reply on the site updates the Slack alert in place, the
unanswered list, `repwatch handle`, and `repwatch status`."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, update

from models.tables import CrawlRun
from tests.e2e.conftest import NOW, site_review


def test_a_business_reply_seen_on_the_site_edits_the_alert_instead_of_sending_a_new_one(e2e):
    reviews = [site_review(1, 1, hours_ago=2), site_review(2, 5, hours_ago=3)]
    e2e.publish(reviews)
    assert e2e.crawl("--full").code == 0
    (alert,) = e2e.slack.messages
    e2e.publish([replace(reviews[0], reply_body="So sorry! We have refunded you.", reply_at=NOW), reviews[1]])
    result = e2e.crawl("--full")
    assert result.code == 0, result.stderr
    assert "1 update" in result.stdout
    edited, thread_reply = e2e.slack.messages[1:]
    assert (edited["kind"], edited["ts"]) == ("update", alert["ts"])
    assert thread_reply["thread_ts"] == alert["ts"]
    assert "the business replied on the site" in json.dumps(thread_reply["blocks"], ensure_ascii=False)
    unanswered = e2e.repwatch("reviews", "--unanswered", "--format", "json")
    assert unanswered.stdout == ""  # replied: nothing waits


def test_unanswered_handle_and_status(e2e):
    e2e.publish([site_review(1, 1, hours_ago=2), site_review(2, 2, hours_ago=1), site_review(3, 5, hours_ago=1)])
    assert e2e.crawl().code == 0
    waiting = [json.loads(line) for line in e2e.repwatch("reviews", "--unanswered", "--format", "json").stdout.splitlines()]
    assert [r["author"] for r in waiting] == ["Reviewer 1", "Reviewer 2"]  # oldest first
    first = waiting[0]["id"]
    table = e2e.repwatch("reviews", "--unanswered").stdout
    assert "unanswered negative reviews (2)" in table and "repwatch handle ID" in table

    handled = e2e.repwatch("handle", str(first), "--note", "called \x1b[31mthem\x1b[0m, refunded")
    assert handled.code == 0, handled.stderr
    assert handled.stdout.strip() == f"review #{first} marked handled (called them, refunded)"  # escapes removed
    assert e2e.slack.messages[-2]["kind"] == "update"  # the alert itself now says it is handled
    left = [json.loads(line)["author"] for line in e2e.repwatch("reviews", "--unanswered", "--format", "json").stdout.splitlines()]
    assert left == ["Reviewer 2"]
    missing = e2e.repwatch("handle", "99999")
    assert (missing.code, missing.stderr.strip()) == (1, "repwatch: no review #99999 (see `repwatch reviews`)")

    status = e2e.repwatch("status", "--format", "json")
    assert status.code == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["daemon"]["running"] is False
    (source,) = report["sources"]
    assert (source["name"], source["state"], source["last_outcome"]) == ("acme-trustpilot", "ok", "ok")
    assert source["next_crawl"] > source["last_crawl"] and source["schedule"].startswith("every 6h")
    assert report["outbox"] == [] and report["unanswered"] == 1 and report["unscored"] == 0
    shown = e2e.repwatch("status").stdout
    assert "daemon: not running" in shown and "outbox: empty, everything delivered" in shown


def test_deliver_sends_what_waited_without_crawling(e2e):
    e2e.publish([site_review(1, 1, hours_ago=2)])
    e2e.slack.fail_next(1, status=500)
    assert e2e.crawl().code == 1 and e2e.slack.messages == []
    # The retry is due after its backoff (30 s): move it to now rather than wait.
    import sqlite3

    with sqlite3.connect(e2e.tmp / "data" / "repwatch.db") as db:
        db.execute("UPDATE delivery SET next_attempt_at = '2000-01-01 00:00:00.000000'")
    pages_before = len(e2e.page_requests())
    result = e2e.repwatch("deliver")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "1 sent"
    assert len(e2e.slack.messages) == 1 and len(e2e.page_requests()) == pages_before  # no crawl
    assert e2e.repwatch("deliver").stdout.strip() == "nothing to do"


def test_status_never_counts_from_a_crawl_dated_in_the_future_and_shows_its_year(e2e):
    e2e.publish([site_review(1, 5, hours_ago=2)])
    assert e2e.crawl().code == 0
    ahead = NOW + timedelta(days=365)  # the crawl ran while the machine's clock was a year ahead
    engine = create_engine(f"sqlite:///{e2e.tmp / 'data' / 'repwatch.db'}")
    with engine.begin() as db:
        db.execute(update(CrawlRun).values(started_at=ahead, finished_at=ahead))
    engine.dispose()

    (source,) = json.loads(e2e.repwatch("status", "--format", "json").stdout)["sources"]
    assert datetime.fromisoformat(source["next_crawl"]) <= datetime.now(UTC) + timedelta(hours=6)
    table = e2e.repwatch("status")
    assert table.code == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if "acme-trustpilot" in line)
    assert f"{ahead:%Y-%m-%d %H:%M}" in row  # not this year's: shown with its year
    next_crawl = datetime.fromisoformat(source["next_crawl"])
    this_year = next_crawl.year == datetime.now(UTC).year  # (the last hours of December cross into the next)
    assert f"{next_crawl:%m-%d %H:%M}" in row and (f"{next_crawl:%Y-%m-%d}" in row) != this_year
