"""SQLite query plans at scale: no statement of a crawl, the digest or `repwatch reviews` walks a whole big table.

SQLite without ANALYZE (repwatch never runs it) plans from fixed guesses, not from table sizes, so the plan it
picks for this small database is the plan it picks at a million reviews. There, a walk of `review`, its versions or
the outbox costs seconds per statement (bench/bench_scale.py; RESULTS.md section 4).
"""
from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.engine import Engine

from alerts.digest import IsoWeek, build_digest
from alerts.outbox import outbox_row
from models.db import connect, migrate, session_factory
from models.store import known_external_ids, mark_removed, store_reviews
from models.tables import Business, Delivery, Source
from monitor.config import parse_config
from monitor.sentiment.stars import verdict_from_stars
from monitor.service.followups import queue_followups
from monitor.service.scoring import score_pending
from monitor.topics import builtin_matcher
from spiders.items import ReviewItem
from tests.cli import run_cli

NOW = datetime.now(UTC).replace(microsecond=0)  # `repwatch reviews --since` counts from the real clock
BIG_TABLES = ("review", "review_version", "delivery")
WHOLE_TABLE = re.compile(rf"^SCAN ({'|'.join(BIG_TABLES)})\b")
# An index searched by nothing but one of a handful of values reads a large share of its table: every negative
# review, every sent alert. SQLite without statistics counts any equality as ~10 rows and likes these plans.
FEW_VALUES = ("sentiment_label", "status", "kind", "change", "baseline", "severity")
# Partial indexes of the rows still waiting for some work (the topics of complaints scored before migration 0008):
# reading one whole reads what is left to do, nothing once done.
WORK_LEFT_INDEXES = ("ix_review_topics_unfilled",)
RARE_KINDS = ("health", "spike")  # a few per source, not a share of the outbox: reading all of them is fine
COARSE_SEARCH = re.compile(rf"^SEARCH ({'|'.join(BIG_TABLES)}) USING (COVERING )?INDEX \w+ \(({'|'.join(FEW_VALUES)})[=>]\?\)$")
CONFIG = """
database: {database}
data_dir: {data_dir}
notifiers:
  hook: {{kind: webhook, url: "http://127.0.0.1:9/hook"}}
businesses:
  - name: Acme
    notify: [hook]
    sources:
      - {{name: acme-tp, kind: trustpilot, url: "https://www.trustpilot.com/review/acme.example"}}
      - {{name: acme-web, kind: schema_org, url: "https://acme.example/reviews"}}
"""


class StarsOnly:
    """A scorer that reads only the stars: enough to run the score stage's statements."""

    detector = None

    def score_many(self, inputs):
        return [verdict_from_stars(float(i.stars or 3), "en") for i in inputs]


def item(n: int, *, rating: float = 1, body: str = "Parcel lost, refund refused.", days_ago: float = 0) -> ReviewItem:
    return ReviewItem(source="acme-tp", external_id=f"r{n}", url=f"https://www.trustpilot.com/reviews/r{n}",
                      author=f"Customer {n}", rating=rating, body=body, language="en",
                      published_at=NOW - timedelta(days=days_ago, hours=1))


@pytest.fixture
def world(tmp_path):
    """A business with two sources, history, alerts sent, an edited review, a health message: every path runs."""
    path = tmp_path / "repwatch.db"
    config_path = tmp_path / "config.yaml"
    config_path.write_text(CONFIG.format(database=f"sqlite:///{path}", data_dir=tmp_path / "data"))
    config = parse_config(config_path.read_text(), env={})
    engine = connect(f"sqlite:///{path}")
    migrate(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        business = Business(name="Acme")
        tp = Source(name="acme-tp", kind="trustpilot", url="https://www.trustpilot.com/review/acme.example",
                    business=business, state="ok", baseline_at=NOW - timedelta(days=40))
        web = Source(name="acme-web", kind="schema_org", url="https://acme.example/reviews", business=business,
                     state="ok", baseline_at=NOW - timedelta(days=40))
        session.add_all([tp, web])
        session.flush()
        ids = tp.id, web.id
    for n, days in enumerate((20, 9, 5, 3, 1)):
        with sessions.begin() as session:
            store_reviews(session, ids[0], [item(n, days_ago=days), item(100 + n, rating=5, days_ago=days)],
                          now=NOW - timedelta(days=days))
    with sessions.begin() as session:
        store_reviews(session, ids[1], [item(200, days_ago=18)], now=NOW - timedelta(days=18))
    score_pending(sessions, config, StarsOnly(), now=NOW - timedelta(days=1))  # queues an alert per negative
    with sessions.begin() as session:
        session.execute(Delivery.__table__.insert(), [outbox_row(
            "health", "health:acme-tp:bad:0", "hook", NOW - timedelta(days=30), payload={"event": "bad"})])
        session.execute(update(Delivery).values(status="sent", sent_at=Delivery.created_at))
        assert session.scalar(select(func.count()).where(Delivery.kind == "alert")) >= 5
    with sessions.begin() as session:  # a review alerted on five days ago is edited on the site today
        store_reviews(session, ids[0], [item(2, rating=4, body="Sorted out in the end.", days_ago=5)], now=NOW)
    yield config, config_path, sessions, ids, path
    engine.dispose()


def statements_of(action) -> list[tuple[str, object]]:
    """Every SELECT any engine runs during `action()`, with its parameters."""
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("SELECT") and conn.dialect.name == "sqlite":
            seen.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    return seen


def whole_table_walks(path, statements, *, ordered_walks: bool = False) -> list[str]:
    """The statements whose plan reads a big table from end to end, or a coarse slice of it (all negatives).

    `ordered_walks`: allow a walk of an index that yields the rows in the statement's ORDER BY under a LIMIT (the
    newest reviews): it stops after LIMIT matching rows, which is quick when matches are common.
    """
    problems = []
    with sqlite3.connect(path) as db:
        for statement, parameters in statements:
            plan = [row[-1] for row in db.execute("EXPLAIN QUERY PLAN " + statement, parameters or ())]
            rare = "(kind=?)" in " ".join(plan) and any(p in RARE_KINDS for p in (parameters or ()))
            bad = [line for line in plan if (WHOLE_TABLE.match(line) and not line.endswith(WORK_LEFT_INDEXES))
                   or (COARSE_SEARCH.match(line) and not rare)]
            if ordered_walks and re.search(r"\bLIMIT\b", statement) and not any("FOR ORDER BY" in line for line in plan):
                bad = []  # the walk is in the order asked for, and stops at the LIMIT
            if bad:
                problems.append(f"{' '.join(statement.split())[:300]}\n    plan: {' | '.join(plan)}")
    return problems


def test_a_crawls_statements_read_only_what_they_need(world):
    config, _, sessions, (source_id, _), path = world
    items = [item(300 + n, rating=1 + n % 5, days_ago=0) for n in range(5)]

    def crawl() -> None:
        with sessions() as session:
            known_external_ids(session, source_id)
        with sessions.begin() as session:
            store_reviews(session, source_id, items, now=NOW)
        score_pending(sessions, config, StarsOnly(), now=NOW)
        queue_followups(sessions, config, now=NOW)
        with sessions.begin() as session:
            mark_removed(session, source_id, not_seen_since=NOW - timedelta(days=2), now=NOW)

    statements = statements_of(crawl)
    joined = " ".join(s for s, _ in statements)
    for fragment in ("FROM review_version", "FROM delivery", "baseline_at", "review.baseline \nFROM review"):
        assert fragment in joined, f"the crawl did not reach the statement with {fragment!r}: the test data is stale"
    assert whole_table_walks(path, statements) == []


def test_the_digest_reads_one_business_not_every_negative_review(world):
    _, _, sessions, _, path = world

    def digest() -> None:
        with sessions() as session:
            week = IsoWeek.containing(NOW - timedelta(days=1, hours=1))  # a negative review was published then
            result = build_digest(session, "Acme", week, now=NOW, topics=builtin_matcher())
        assert result.negatives_total >= 1

    assert whole_table_walks(path, statements_of(digest)) == []


@pytest.mark.parametrize(("flags", "ordered_walks"), [
    # a window is read by its index: a walk in published order finds nothing to stop at when the window is quiet
    (["--negative", "--since", "7d"], False),
    (["--since", "24h", "--source", "acme-tp"], False),
    (["--unanswered"], False),
    # the newest reviews (of a kind), from the newest down until --limit are found
    ([], True),
    (["--negative"], True),
])
def test_repwatch_reviews_reads_only_what_it_shows(world, flags, ordered_walks):
    _, config_path, _, _, path = world
    result: list = []

    def run() -> None:
        result.append(run_cli("reviews", "--config", str(config_path), "--format", "json", *flags))

    statements = statements_of(run)
    assert result[0].code == 0, result[0].stderr
    assert any("FROM review" in s for s, _ in statements)
    assert whole_table_walks(path, statements, ordered_walks=ordered_walks) == []
