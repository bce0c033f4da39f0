"""The outbox deliverer against real local Slack stand-ins: once per review, isolation, retries, limits."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from alerts.outbox import backoff
from demo.slack_receiver import SlackReceiver
from models.tables import Business, Delivery, Review, Source
from monitor.service.alerting import deliver
from monitor.config import parse_config

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def config_for(good: SlackReceiver, bad: SlackReceiver, max_attempts: int = 3):
    return parse_config(f"""
alerting: {{max_attempts: {max_attempts}, flood_threshold: 100}}
notifiers:
  good: {{kind: slack, token: xoxb-good, channel: "#a", api_url: "{good.api_url}", min_interval: 0}}
  bad: {{kind: slack, token: xoxb-bad, channel: "#b", api_url: "{bad.api_url}", min_interval: 0}}
businesses:
  - name: Acme
    notify: [good, bad]
    sources: [{{name: acme, kind: trustpilot, url: "https://www.trustpilot.com/review/acme.example"}}]
""", env={})


def queue(sessions, n: int, destinations=("good", "bad")) -> None:
    with sessions.begin() as session:
        source = Source(name="acme", kind="trustpilot", url="https://www.trustpilot.com/review/acme.example",
                        business=Business(name="Acme"))
        for i in range(n):
            review = Review(source=source, external_id=f"r{i}", url=f"https://www.trustpilot.com/reviews/r{i}",
                            body=f"Awful visit number {i}", rating=1, content_hash=str(i), sentiment_label="neg",
                            sentiment_why="1★ rating", severity="high", published_at=NOW)
            session.add(review)
            session.flush()
            for destination in destinations:
                session.add(Delivery(review_id=review.id, destination=destination, next_attempt_at=NOW,
                                      dedupe_key=f"alert:{review.id}"))


def statuses(sessions) -> dict[str, list[str]]:
    with sessions() as session:
        rows = session.execute(select(Delivery.destination, Delivery.status).order_by(Delivery.id)).all()
    found: dict[str, list[str]] = {}
    for destination, status in rows:
        found.setdefault(destination, []).append(status)
    return found


def test_a_failing_destination_does_not_block_another(sessions):
    with SlackReceiver(token="xoxb-good") as good, SlackReceiver(token="xoxb-bad") as bad:
        queue(sessions, 3)
        bad.fail_next(1, status=503)
        report = deliver(sessions, config_for(good, bad), now=lambda: NOW)
        assert len(good.messages) == 3 and bad.messages == []
        assert report.sent == 3 and report.retrying == 3
        assert statuses(sessions) == {"good": ["sent"] * 3, "bad": ["pending"] * 3}
        # Nothing is due again before the backoff has passed; afterwards the rest goes out, once.
        assert deliver(sessions, config_for(good, bad), now=lambda: NOW).sent == 0
        later = deliver(sessions, config_for(good, bad), now=lambda: NOW + timedelta(hours=1))
        assert later.sent == 3 and len(bad.messages) == 3 and len(good.messages) == 3


def test_a_permanent_error_marks_the_alert_failed_and_says_why(sessions):
    with SlackReceiver(token="xoxb-good") as good, SlackReceiver(token="xoxb-other") as bad:
        queue(sessions, 1)
        report = deliver(sessions, config_for(good, bad), now=lambda: NOW)  # bad: wrong token
        assert statuses(sessions) == {"good": ["sent"], "bad": ["failed"]}
        assert any(p.startswith("bad: ") and "not delivered" in p for p in report.problems)
        assert all("xoxb-bad" not in p for p in report.problems)


def test_retries_stop_after_max_attempts(sessions):
    with SlackReceiver(token="xoxb-good") as good, SlackReceiver(token="xoxb-bad") as bad:
        queue(sessions, 1, destinations=("bad",))
        bad.fail_next(10, status=500)
        config = config_for(good, bad, max_attempts=3)
        for hour in range(3):
            deliver(sessions, config, now=lambda h=hour: NOW + timedelta(hours=h * 24))
        assert statuses(sessions) == {"bad": ["failed"]}


def test_backoff_doubles_and_is_capped():
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(30) == timedelta(hours=6)


def test_on_postgresql_a_row_another_deliverer_is_sending_is_skipped_not_sent_twice(sessions):
    """Two deliverers at once (two machines): the row one holds is locked; the other passes over it, unblocked."""
    import pytest

    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("row locks (FOR UPDATE SKIP LOCKED) are PostgreSQL's; SQLite runs are serialised by a file lock")
    with SlackReceiver(token="xoxb-good") as good, SlackReceiver(token="xoxb-bad") as bad:
        queue(sessions, 3, destinations=("good",))
        config = config_for(good, bad)
        with sessions() as other:  # "the other deliverer", in the middle of sending the first alert
            first = other.scalars(select(Delivery).order_by(Delivery.id).limit(1).with_for_update()).one()
            report = deliver(sessions, config, now=lambda: NOW)
            assert report.sent == 2 and len(good.messages) == 2
            assert not any("Awful visit number 0" in m["text"] for m in good.messages)
            first.status = "sent"
            other.commit()
        assert deliver(sessions, config, now=lambda: NOW).sent == 0
        assert statuses(sessions) == {"good": ["sent"] * 3} and len(good.messages) == 2
