"""The score stage: verdicts for reviews waiting to be scored, alert decisions, and outbox rows for them."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from models.tables import Delivery, Review, Source
from monitor import rules
from monitor.sentiment import Scorer, TextInput

BATCH_SIZE = 500
MAX_SCORED_CHARS = 5000  # VADER's cost grows faster than length (DESIGN §7); the opening says enough


def scoring_text(review: Review) -> str:
    text = f"{review.title}. {review.body}" if review.title else review.body
    return text[:MAX_SCORED_CHARS]


def destinations_by_source(config: Any) -> dict[str, list[str]]:
    return {source.name: list(business.notify) for business, source in config.sources()}


def _insert_deliveries(session: Session, rows: list[dict]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Delivery)
    session.execute(insert.on_conflict_do_nothing(index_elements=["review_id", "destination"]), rows)


def score_pending(
    sessions: sessionmaker[Session],
    config: Any,
    scorer: Scorer,
    *,
    batch_size: int = BATCH_SIZE,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Score every review with no verdict yet, in batches, committing each; returns (scored, alerts queued)."""
    now = now or datetime.now(UTC)
    destinations = destinations_by_source(config)
    window = config.alerting.baseline_window
    scored = queued = 0
    last_id = 0
    while True:
        with sessions.begin() as session:
            batch = session.execute(
                select(Review, Source.name)
                .join(Source, Review.source_id == Source.id)
                .where(Review.scored_at.is_(None), Review.id > last_id)
                .order_by(Review.id)
                .limit(batch_size)
            ).all()
            if not batch:
                break
            last_id = batch[-1][0].id
            verdicts = scorer.score_many(
                [TextInput(text=scoring_text(r), stars=r.rating, lang=r.language) for r, _ in batch]
            )
            updates: list[dict] = []
            deliveries: list[dict] = []
            for (review, source_name), verdict in zip(batch, verdicts, strict=True):
                decision = rules.decide(
                    label=verdict.label,
                    rating=review.rating,
                    score=verdict.score,
                    published_at=review.published_at,
                    first_seen_at=review.first_seen_at,
                    baseline=review.baseline,
                    baseline_window=window,
                )
                updates.append(
                    {
                        "id": review.id,
                        "sentiment_label": verdict.label,
                        "sentiment_score": verdict.score,
                        "sentiment_lang": verdict.lang,
                        "sentiment_why": verdict.why,
                        "severity": decision.severity,
                        "scored_at": now,
                    }
                )
                if decision.alert:
                    deliveries.extend(
                        {"review_id": review.id, "destination": name, "status": "pending", "next_attempt_at": now, "created_at": now, "attempts": 0}
                        for name in destinations.get(source_name, [])
                    )
            session.execute(update(Review), updates)
            _insert_deliveries(session, deliveries)
            scored += len(batch)
            queued += len(deliveries)
    return scored, queued
