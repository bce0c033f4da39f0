"""Deliver the outbox: due Delivery rows → notifiers, with retries, backoff and per-destination isolation."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.base import Alert, DeliveryError, Notifier, build_notifier
from models.tables import Business, Delivery, Review, Source

MAX_BACKOFF = timedelta(hours=6)
FIRST_BACKOFF = timedelta(seconds=30)


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)  # one line per destination that had trouble

    @property
    def ok(self) -> bool:
        return not self.problems


def backoff(attempts: int) -> timedelta:
    return min(FIRST_BACKOFF * 2 ** max(attempts - 1, 0), MAX_BACKOFF)


def alert_for(review: Review, source: Source, business: Business, site_name: str) -> Alert:
    return Alert(
        review_id=review.id,
        business=business.name,
        source=source.name,
        site=site_name,
        url=review.url,
        body=review.body,
        label=review.sentiment_label or "unscored",
        severity=review.severity or "normal",
        why=review.sentiment_why or "",
        rating=review.rating,
        author=review.author,
        title=review.title,
        published_at=review.published_at,
        language=review.sentiment_lang or review.language,
        score=review.sentiment_score,
        draft_reply=None,
    )


def site_name(source: Source) -> str:
    """How the owner calls the site: the spider's site name, or for generic spiders the page's host."""
    from spiders.registry import load_spiders

    spider = load_spiders().get(source.kind)
    if spider is not None and spider.site_name:
        return spider.site_name
    return urlsplit(source.url).hostname or source.kind


def build_notifiers(config: Any) -> dict[str, Notifier]:
    return {name: build_notifier(name, notifier_config) for name, notifier_config in config.notifiers.items()}


def deliver_due(
    sessions: sessionmaker[Session],
    config: Any,
    *,
    notifiers: dict[str, Notifier] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Send every due alert once. A destination that fails is skipped for the rest of this run; others go on."""
    notifiers = build_notifiers(config) if notifiers is None else notifiers
    settings = config.alerting
    report = DeliveryReport()
    # destination -> when to try it again; its other alerts wait with it, so they still go out in order
    failing: dict[str, datetime] = {}
    with sessions() as session:
        due_ids = session.scalars(
            select(Delivery.id)
            .where(Delivery.status == "pending", Delivery.next_attempt_at <= now())
            .order_by(Delivery.id)
        ).all()
    for delivery_id in due_ids:
        with sessions.begin() as session:
            row = session.execute(
                select(Delivery, Review, Source, Business)
                .join(Review, Delivery.review_id == Review.id)
                .join(Source, Review.source_id == Source.id)
                .join(Business, Source.business_id == Business.id)
                .where(Delivery.id == delivery_id, Delivery.status == "pending")
            ).first()
            if row is None:
                continue
            delivery, review, source, business = row
            if delivery.destination in failing:
                delivery.next_attempt_at = max(delivery.next_attempt_at, failing[delivery.destination])
                report.retrying += 1
                continue
            notifier = notifiers.get(delivery.destination)
            if notifier is None:
                # The destination was removed from config: keep the row, say so once.
                failing[delivery.destination] = delivery.next_attempt_at
                report.retrying += 1
                report.problems.append(f"{delivery.destination}: no such notifier in config; alerts kept")
                continue
            alert = alert_for(review, source, business, site_name(source))
            delivery.attempts += 1
            try:
                try:
                    result = notifier.send(alert)
                except DeliveryError as error:
                    # A short rate limit is worth waiting for once; anything longer goes back to the outbox.
                    if not (error.retryable and error.retry_after is not None
                            and error.retry_after <= settings.max_inline_wait.total_seconds()):
                        raise
                    sleep(error.retry_after)
                    result = notifier.send(alert)
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
                    report.problems.append(f"{delivery.destination}: {error}; alert for review {review.id} not delivered")
                continue
            delivery.status = "sent"
            delivery.sent_at = now()
            delivery.remote_id = result.remote_id
            delivery.last_error = None
            report.sent += 1
    return report
