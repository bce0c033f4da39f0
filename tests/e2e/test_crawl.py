"""`repwatch crawl` end to end: local site → stored reviews → exactly the alerts the rules ask for, once."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select

from models.tables import CrawlRun, Delivery, Review
from tests.e2e.conftest import NOW, site_review


def alerted_review_ids(slack) -> list[str]:
    """The review ids behind the alerts Slack accepted (each alert links to /reviews/<id>)."""
    ids = []
    for message in slack.messages:
        found = re.findall(r"/reviews/([0-9a-f]{24})", str(message["blocks"]))
        ids.append(found[0])
    return ids


def history(n_recent_negative: int = 2) -> list:
    """45 reviews newest first: two recent negatives (alert), recent positives, and older history of all kinds."""
    reviews = [site_review(0, 1, 3), site_review(1, 5, 6), site_review(2, 2, 30), site_review(3, 4, 50)]
    reviews += [site_review(n, 1 + n % 5, 100 + 24 * n) for n in range(4, 45)]  # older than the 72 h window
    return reviews


def database(e2e):
    return create_engine(f"sqlite:///{e2e.tmp / 'data' / 'repwatch.db'}")


def test_first_crawl_is_a_silent_baseline_and_recrawl_is_one_request(e2e):
    e2e.publish(history())
    first = e2e.crawl()
    assert first.code == 0, first.stderr
    assert sorted(alerted_review_ids(e2e.slack)) == [f"{0:024x}", f"{2:024x}"]  # only recent negatives
    with database(e2e).connect() as db:
        assert db.scalar(select(func.count(Review.id))) == 45
        assert db.scalar(select(func.count(Review.id)).where(Review.sentiment_label == "neg")) > 2

    e2e.site.reset_log()
    second = e2e.crawl()
    assert second.code == 0, second.stderr
    assert e2e.page_requests() == ["/review/acme.example"]  # one request, answered 304
    assert [r.status for r in e2e.site.requests if r.path != "/robots.txt"] == [304]
    assert len(e2e.slack.messages) == 2  # no duplicates

    # A new 1★ review appears on top: exactly one more alert, and paging stops at page 2 (all known there).
    e2e.publish([site_review(99, 1, 1, body="Charged twice and nobody answers the phone.")] + history())
    e2e.site.reset_log()
    third = e2e.crawl()
    assert third.code == 0, third.stderr
    assert alerted_review_ids(e2e.slack)[-1] == f"{99:024x}"
    assert len(e2e.slack.messages) == 3
    assert e2e.page_requests() == ["/review/acme.example", "/review/acme.example?page=2"]


def test_crawl_records_older_than_keep_runs_are_deleted_at_the_next_crawl(e2e):
    e2e.publish(history())
    assert e2e.crawl().code == 0
    engine = database(e2e)
    with engine.begin() as db:
        source_id = db.scalar(select(CrawlRun.source_id))
        for days, outcome in ((200, "ok"), (120, "failed"), (30, "ok")):  # keep_runs defaults to 90 days
            db.execute(CrawlRun.__table__.insert().values(
                source_id=source_id, outcome=outcome, started_at=NOW - timedelta(days=days),
                finished_at=NOW - timedelta(days=days), stats={"pages": 1}))
    assert e2e.crawl().code == 0
    with engine.connect() as db:
        left = db.execute(select(CrawlRun.started_at, CrawlRun.outcome).order_by(CrawlRun.started_at)).all()
    assert len(left) == 3  # the 30-day-old record and both crawls of this test
    assert left[0].started_at.replace(tzinfo=NOW.tzinfo) == NOW - timedelta(days=30)
    with engine.connect() as db:
        assert db.scalar(select(func.count(Review.id))) == 45  # reviews are never pruned


def test_slack_outage_keeps_alerts_and_delivers_them_on_a_later_run(e2e):
    e2e.publish(history())
    e2e.slack.fail_next(1, status=500)  # the destination is then left alone for the rest of the run
    down = e2e.crawl()
    assert down.code == 1
    errors = [line for line in down.stderr.splitlines() if line.startswith("repwatch:")]
    assert errors and all("next try after" in line for line in errors), down.stderr
    assert "Traceback" not in down.stderr and "xoxb-" not in down.stderr
    assert e2e.slack.messages == []

    # An hour later (the backoff has passed) Slack is back: the same two alerts go out, once.
    e2e.pass_time()
    back = e2e.crawl()
    assert back.code == 0, back.stderr
    assert sorted(alerted_review_ids(e2e.slack)) == [f"{0:024x}", f"{2:024x}"]
    with database(e2e).connect() as db:
        assert db.scalar(select(func.count(Delivery.id)).where(Delivery.status == "sent")) == 2


def test_a_short_rate_limit_is_waited_out_within_the_run(e2e):
    e2e.publish(history())
    e2e.slack.rate_limit_next(1, retry_after="0")
    result = e2e.crawl()
    assert result.code == 0, result.stderr
    assert len(e2e.slack.messages) == 2


def test_a_long_rate_limit_goes_back_to_the_outbox(e2e):
    e2e.publish(history())
    e2e.slack.rate_limit_next(1, retry_after="120")
    result = e2e.crawl()
    assert result.code == 1
    assert "next try after" in result.stderr
    with database(e2e).connect() as db:
        pending = db.execute(select(Delivery.next_attempt_at).where(Delivery.status == "pending")).scalars().all()
    assert len(pending) == 2  # both wait as Slack asked (the second was not tried: order is kept)
    assert min(pending) >= NOW + timedelta(seconds=100)
    assert e2e.slack.messages == []


def test_an_unreachable_site_fails_with_one_line_and_loses_nothing(e2e):
    e2e.publish(history())
    assert e2e.crawl().code == 0
    e2e.site.close_all()
    result = e2e.crawl()
    assert result.code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("repwatch:")]
    assert len(lines) == 1 and "acme-trustpilot failed" in lines[0], result.stderr
    with database(e2e).connect() as db:
        assert db.scalar(select(func.count(Review.id))) == 45
    health = e2e.repwatch("sources", "health")
    assert "failing" in health.stdout


def test_a_broken_config_is_one_line_per_problem_and_exit_1(e2e):
    e2e.config.write_text(e2e.config.read_text().replace("notify:", "notfy:").replace("kind: trustpilot", "kind: trustpilott"))
    result = e2e.crawl()
    assert result.code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert any("notfy: unknown key (did you mean 'notify'?)" in line for line in lines)
    assert any("did you mean 'trustpilot'" in line for line in lines)


def test_the_whole_pipeline_runs_on_each_database(e2e, database_url):
    """The same crawl → store → score → alert → quiet recrawl, on SQLite and on PostgreSQL."""
    e2e.config.write_text(f"database: {database_url}\n" + e2e.config.read_text())
    e2e.publish(history())
    first = e2e.crawl()
    assert first.code == 0, first.stderr
    assert sorted(alerted_review_ids(e2e.slack)) == [f"{0:024x}", f"{2:024x}"]
    listed = e2e.repwatch("reviews", "--negative", "--format", "json", "--limit", "100")
    negatives = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["rating"] for r in negatives} == {1.0, 2.0} and len(negatives) == 18
    second = e2e.crawl()
    assert second.code == 0 and len(e2e.slack.messages) == 2


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_two_first_crawls_at_once_create_the_business_and_sources_once(database_url, tmp_path):
    """Two crawls starting together on a new database (the daemon's first cycle): the second one's sync waits for the
    first's rows instead of reading none, inserting the same business, and failing on its unique name."""
    import threading

    from sqlalchemy import event

    from models.db import connect, migrate, session_factory
    from models.tables import Business, Source
    from monitor.config import parse_config
    from monitor.service.crawl import sync_config

    config = parse_config("businesses:\n  - name: Acme\n    sources:\n"
                          "      - {name: a, kind: trustpilot, url: 'https://www.trustpilot.com/review/a.example'}\n"
                          "      - {name: b, kind: trustpilot, url: 'https://www.trustpilot.com/review/b.example'}\n",
                          env={})
    first_engine, second_engine = connect(database_url), connect(database_url)
    migrate(first_engine)
    reached = threading.Event()  # the second sync has sent its first write (or lock) statement
    marks = ("INSERT", "BEGIN IMMEDIATE", "SELECT pg_advisory_xact_lock")

    @event.listens_for(second_engine, "before_cursor_execute")
    def _seen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(tuple(m.upper() for m in marks)):
            reached.set()

    errors: list[BaseException] = []

    def second() -> None:
        try:
            with session_factory(second_engine).begin() as session:
                sync_config(session, config)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
            reached.set()

    try:
        with session_factory(first_engine).begin() as session:
            sync_config(session, config)  # flushed, not committed: the second sync starts meanwhile
            thread = threading.Thread(target=second)
            thread.start()
            assert reached.wait(60)
        thread.join(60)
        assert not thread.is_alive() and errors == []
        with session_factory(first_engine)() as session:
            assert session.scalar(select(func.count()).select_from(Business)) == 1
            assert sorted(session.scalars(select(Source.name))) == ["a", "b"]
    finally:
        first_engine.dispose()
        second_engine.dispose()
