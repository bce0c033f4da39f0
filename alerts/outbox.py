"""The outbox: queue messages exactly once, then deliver what is due, with retries, threads and flood control."""
from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Row, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from alerts.base import (
    Alert,
    AlertRefresh,
    AlertUpdate,
    DeliveryError,
    FloodSummary,
    Notifier,
    Reminder,
    SendResult,
    SourceHealth,
    Spike,
    Target,
)
from models.tables import Delivery, Review
from models.vocab import HANDLED_STATUSES, SEVERITIES

MAX_BACKOFF = timedelta(hours=6)
FIRST_BACKOFF = timedelta(seconds=30)


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    dropped: int = 0  # updates or reminders no longer worth sending (the alert never went out, already answered)
    summaries: int = 0  # flood summaries made in this run
    problems: list[str] = field(default_factory=list)  # one line per destination that had trouble

    @property
    def ok(self) -> bool:
        return not self.problems


def backoff(attempts: int) -> timedelta:
    return min(FIRST_BACKOFF * 2 ** max(attempts - 1, 0), MAX_BACKOFF)


# --- queueing ------------------------------------------------------------------------------------------------


def outbox_row(
    kind: str,
    key: str,
    destination: str,
    now: datetime,
    *,
    review_id: int | None = None,
    channel: str | None = None,
    mention: str | None = None,
    parent_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind, "dedupe_key": key, "destination": destination, "review_id": review_id, "channel": channel,
        "mention": mention, "parent_id": parent_id, "payload": payload, "status": "pending", "attempts": 0,
        "next_attempt_at": now, "created_at": now,
    }


def enqueue(session: Session, rows: Iterable[dict[str, Any]]) -> int:
    """Insert outbox rows; one already queued under the same (destination, dedupe_key) is left alone.

    Returns how many were new. The unique key, not a lookup first, is what makes this safe against a
    concurrent run or a rerun after a crash.
    """
    rows = list(rows)
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(Delivery)
        .on_conflict_do_nothing(index_elements=["destination", "dedupe_key"])
        .returning(Delivery.id)
    )
    return len(session.execute(statement, rows).all())


# --- what the deliverer is given ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxSettings:
    """How the outbox delivers (config.yaml `alerting:`)."""

    flood_threshold: int  # more new alerts than this for one destination in one run: one summary instead
    max_attempts: int  # attempts before a message is marked failed
    max_inline_wait: timedelta  # the longest rate-limit wait inside a run; longer waits go back to the outbox
    reply_deadline: timedelta | None  # a reminder's deadline, as the reminder tells it


class AlertLookup(Protocol):
    """Turns review ids into finished Alert values (monitor.service.alerting.AlertBuilder is one)."""

    def alerts(self, session: Session, review_ids: list[int]) -> dict[int, Alert]: ...


class Dropped(Exception):
    """This message is no longer worth sending; the reason is kept on the row."""


# --- flood control -------------------------------------------------------------------------------------------


def group_floods(session: Session, threshold: int, now: datetime) -> int:
    """Alerts new in this run, more than `threshold` for one destination and channel: put them under a summary.

    Only alerts never tried yet are grouped, so a retry is never regrouped. Returns summaries made.
    """
    rows = session.execute(
        select(Delivery.id, Delivery.destination, Delivery.channel, Delivery.mention)
        .where(Delivery.kind == "alert", Delivery.status == "pending", Delivery.parent_id.is_(None),
               Delivery.attempts == 0, Delivery.next_attempt_at <= now)
        .order_by(Delivery.id)
    ).all()
    groups: dict[tuple[str, str | None], list[Any]] = defaultdict(list)
    for row in rows:
        groups[(row.destination, row.channel)].append(row)
    made = 0
    for (destination, channel), members in groups.items():
        if len(members) <= threshold:
            continue
        ids = [m.id for m in members]
        mention = next((m.mention for m in members if m.mention), None)
        if not enqueue(session, [outbox_row("summary", f"summary:{ids[0]}", destination, now, channel=channel,
                                            mention=mention, payload={"items": ids})]):
            continue
        summary_id = session.scalar(
            select(Delivery.id).where(Delivery.destination == destination, Delivery.dedupe_key == f"summary:{ids[0]}")
        )
        session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(parent_id=summary_id))
        made += 1
    return made


# --- delivering ----------------------------------------------------------------------------------------------


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _delivery_order(rows: Sequence[Row[int, str, int | None]]) -> list[int]:
    """By id, except that a summary goes first and its thread right after it, in order."""
    return [row.id for row in sorted(rows, key=lambda r: (r.parent_id or r.id, r.kind != "summary", r.id))]


def deliver_due(
    sessions: sessionmaker[Session],
    notifiers: dict[str, Notifier],
    alerts: AlertLookup,
    settings: OutboxSettings,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Send every due message once. A destination that fails is skipped for the rest of this run; others go on.

    `notifiers` by their config name (the outbox rows' destination); `alerts` makes the Alert values they send.
    """
    report = DeliveryReport()
    with sessions.begin() as session:
        report.summaries = group_floods(session, settings.flood_threshold, now())
    with sessions() as session:
        due = session.execute(
            select(Delivery.id, Delivery.kind, Delivery.parent_id)
            .where(Delivery.status == "pending", Delivery.next_attempt_at <= now())
        ).all()
    # destination -> when to try it again; its other messages wait with it, so they still go out in order
    failing: dict[str, datetime] = {}
    # Older messages of a destination still in backoff from an earlier run: newer ones must not overtake them.
    with sessions() as session:
        waiting = {
            destination: (first_id, until)
            for destination, first_id, until in session.execute(
                select(Delivery.destination, func.min(Delivery.id), func.min(Delivery.next_attempt_at))
                .where(Delivery.status == "pending", Delivery.next_attempt_at > now())
                .group_by(Delivery.destination)
            )
        }
    for delivery_id in _delivery_order(due):
        with sessions.begin() as session:
            # PostgreSQL: the row stays locked while it is sent, and a deliverer in another process skips it
            # instead of sending it too (SQLite has no row locks: there the outbox file lock serialises runs).
            delivery = session.scalar(
                select(Delivery)
                .where(Delivery.id == delivery_id, Delivery.status == "pending")
                .with_for_update(skip_locked=True)
            )
            if delivery is None:
                continue  # sent inside a summary a moment ago, by another run, or being sent by one right now
            if delivery.destination in failing:
                delivery.next_attempt_at = max(delivery.next_attempt_at, failing[delivery.destination])
                report.retrying += 1
                continue
            older = waiting.get(delivery.destination)
            if older is not None and older[0] < delivery.id:
                delivery.next_attempt_at = max(delivery.next_attempt_at, older[1])
                report.retrying += 1
                continue
            notifier = notifiers.get(delivery.destination)
            if notifier is None:
                # The destination was removed from config: keep the row, say so once.
                failing[delivery.destination] = delivery.next_attempt_at
                report.retrying += 1
                report.problems.append(f"{delivery.destination}: no such notifier in config; alerts kept")
                continue
            parent = session.get(Delivery, delivery.parent_id) if delivery.parent_id else None
            if parent is not None and parent.status == "pending" and delivery.kind == "alert":
                # Its flood summary has not gone out yet (failing, or waiting): the thread must come after it.
                delivery.next_attempt_at = max(delivery.next_attempt_at, parent.next_attempt_at)
                report.retrying += 1
                continue
            try:
                send = _prepare(session, delivery, parent, notifier, alerts, settings, now())
            except Dropped as reason:
                delivery.status, delivery.last_error = "dropped", str(reason)
                report.dropped += 1
                continue
            if send is None:
                continue  # an alert already listed in its summary
            delivery.attempts += 1
            try:
                try:
                    result = send()
                except DeliveryError as error:
                    # A short rate limit is worth waiting for once; anything longer goes back to the outbox.
                    if not (error.retryable and error.retry_after is not None
                            and error.retry_after <= settings.max_inline_wait.total_seconds()):
                        raise
                    sleep(error.retry_after)
                    result = send()
            except DeliveryError as error:
                delivery.last_error = str(error)
                if error.retryable and delivery.attempts < settings.max_attempts:
                    delay = backoff(delivery.attempts)
                    if error.retry_after:
                        delay = max(delay, timedelta(seconds=error.retry_after))
                    delivery.next_attempt_at = now() + delay
                    failing[delivery.destination] = delivery.next_attempt_at
                    report.retrying += 1
                    report.problems.append(
                        f"{delivery.destination}: {error} (next try after {delivery.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC)"
                    )
                else:
                    delivery.status = "failed"
                    report.failed += 1
                    about = f"review {delivery.review_id}" if delivery.review_id else delivery.dedupe_key
                    report.problems.append(f"{delivery.destination}: {error}; {delivery.kind} for {about} not delivered")
                continue
            delivery.status = "sent"
            delivery.sent_at = now()
            delivery.remote_id = result.remote_id
            delivery.last_error = None
            report.sent += 1
            if delivery.kind == "summary" and not notifier.threads:
                # The summary listed them: they count as delivered, pointing at it.
                session.execute(
                    update(Delivery)
                    .where(Delivery.parent_id == delivery.id, Delivery.status == "pending")
                    .values(status="sent", sent_at=now(), remote_id=result.remote_id, last_error=None)
                )
    return report


def _prepare(
    session: Session,
    delivery: Delivery,
    parent: Delivery | None,
    notifier: Notifier,
    lookup: AlertLookup,
    settings: OutboxSettings,
    now: datetime,
) -> Callable[[], SendResult] | None:
    """What sending this row means, as a call; raises Dropped when it no longer makes sense."""
    target = Target(channel=delivery.channel, mention=delivery.mention)
    payload = delivery.payload or {}
    if delivery.kind == "summary":
        ids = list(payload.get("items", []))
        members = session.execute(
            select(Delivery.id, Delivery.review_id).where(Delivery.id.in_(ids), Delivery.status == "pending")
        ).all()
        alerts = lookup.alerts(session, [m.review_id for m in members if m.review_id is not None])
        items = tuple(alerts[m.review_id] for m in sorted(members, key=lambda m: m.id) if m.review_id in alerts)
        if not items:
            raise Dropped("every alert of this summary went out on its own")
        summary = FloodSummary(
            count=len(items),
            by_business=tuple(Counter(a.business for a in items).most_common()),
            by_severity=tuple((s, n) for s in SEVERITIES if (n := sum(a.severity == s for a in items))),
            items=items,
            threaded=notifier.threads,
        )
        return lambda: notifier.send_notice(summary, target)
    if delivery.kind == "spike":
        alerts = lookup.alerts(session, list(payload.get("examples", [])))
        spike = Spike(
            business=payload["business"], source=payload.get("source"), site=payload.get("site"),
            count=payload["count"], mean=payload["mean"], sd=payload["sd"], threshold=payload["threshold"],
            until=datetime.fromisoformat(payload["until"]),
            examples=tuple(alerts[i] for i in payload.get("examples", []) if i in alerts),
        )
        return lambda: notifier.send_notice(spike, target)

    if delivery.kind == "health":
        health = SourceHealth(**{**payload, "last_success_at": _when(payload.get("last_success_at"))})
        return lambda: notifier.send_notice(health, target)

    if delivery.review_id is None:
        raise Dropped(f"a {delivery.kind} without a review")
    alert = lookup.alerts(session, [delivery.review_id]).get(delivery.review_id)
    if alert is None:
        raise Dropped("the review is gone from the database")
    if delivery.kind == "alert":
        if parent is not None and parent.kind == "alert":
            # A later post of one incident: in the first post's thread where the destination has threads and
            # that alert went out; otherwise a normal alert (which says where else the complaint was posted).
            if parent.status == "sent" and notifier.threads and parent.remote_id:
                target = Target(channel=delivery.channel, mention=None, thread=parent.remote_id)
        elif parent is not None and parent.status == "sent":
            if not notifier.threads:
                delivery.status, delivery.sent_at, delivery.remote_id = "sent", now, parent.remote_id
                return None
            target = Target(channel=delivery.channel, mention=None, thread=parent.remote_id)
        return lambda: notifier.send(alert, target)
    # Updates and reminders answer an alert that went out; without one there is nothing to update or remind of.
    if parent is None or parent.status != "sent":
        raise Dropped(f"the alert it follows up was not delivered ({parent.status if parent else 'none'})")
    thread = parent.remote_id if notifier.threads else None
    if delivery.kind == "refresh":
        if not notifier.edits or not parent.remote_id:
            raise Dropped("this destination cannot edit a message it sent")
        newer = session.scalar(select(Delivery.id).where(
            Delivery.parent_id == parent.id, Delivery.kind == "refresh", Delivery.status == "pending",
            Delivery.id > delivery.id).limit(1))
        if newer is not None:
            raise Dropped("a newer refresh of the same message follows")  # it shows the state as it is then
        refresh = AlertRefresh(alert=alert, original=parent.remote_id)
        return lambda: notifier.refresh(refresh)
    if delivery.kind == "update":
        notice = AlertUpdate(alert=alert, changes=tuple(payload.get("changes", [])), original=thread,
                             settled=bool(payload.get("settled")))
        return lambda: notifier.send_notice(notice, Target(channel=delivery.channel, thread=thread))
    if delivery.kind == "reminder":
        review = session.get(Review, delivery.review_id)
        assert review is not None
        if review.reply_body or review.reply_published_at or review.status in HANDLED_STATUSES or review.removed_at:
            raise Dropped("answered before the reminder went out")
        deadline = settings.reply_deadline or timedelta(0)
        reminder = Reminder(alert=alert, waiting=now - review.first_seen_at, deadline=deadline)
        return lambda: notifier.send_notice(reminder, Target(channel=delivery.channel, mention=delivery.mention,
                                                             thread=thread))
    raise Dropped(f"unknown message kind {delivery.kind!r}")
