"""Batched review storage: insert new reviews, version changed ones; "new" means the insert succeeded."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models.tables import Review, ReviewVersion
from spiders.items import Review as ReviewItem


@dataclass
class StoreResult:
    new: int = 0
    changed: int = 0
    unchanged: int = 0


def _insert(session: Session):
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Review)


def _content_columns(item: ReviewItem) -> dict:
    return {
        "url": item.url,
        "author": item.author,
        "rating": item.rating,
        "title": item.title,
        "body": item.body,
        "published_at": item.published_at,
        "language": item.language,
        "reply_body": item.reply.body if item.reply else None,
        "reply_published_at": item.reply.published_at if item.reply else None,
        "content_hash": item.content_hash(),
    }


def _version(review_id: int, item: ReviewItem, now: datetime) -> dict:
    return {
        "review_id": review_id,
        "seen_at": now,
        "content_hash": item.content_hash(),
        "snippet_hash": item.snippet_hash,
        "rating": item.rating,
        "title": item.title,
        "body": item.body,
        "reply_body": item.reply.body if item.reply else None,
    }


def store_reviews(
    session: Session,
    source_id: int,
    items: Sequence[ReviewItem],
    *,
    baseline: bool = False,
    now: datetime | None = None,
) -> StoreResult:
    """Store one batch (one transaction, a handful of statements whatever its size). The caller commits."""
    now = now or datetime.now(UTC)
    result = StoreResult()
    if not items:
        return result
    by_id = {item.external_id: item for item in items}  # last one wins inside a batch
    existing = {
        external_id: (review_id, content_hash)
        for review_id, external_id, content_hash in session.execute(
            select(Review.id, Review.external_id, Review.content_hash).where(
                Review.source_id == source_id, Review.external_id.in_(list(by_id))
            )
        )
    }
    fresh = [item for external_id, item in by_id.items() if external_id not in existing]
    versions: list[dict] = []
    if fresh:
        rows = [
            {
                "source_id": source_id,
                "external_id": item.external_id,
                "first_seen_at": now,
                "last_seen_at": now,
                "baseline": baseline,
                "status": "new",
                **_content_columns(item),
            }
            for item in fresh
        ]
        statement = (
            _insert(session)
            .on_conflict_do_nothing(index_elements=["source_id", "external_id"])
            .returning(Review.id, Review.external_id, sort_by_parameter_order=True)
        )
        inserted = session.execute(statement, rows).all()
        result.new = len(inserted)
        versions.extend(_version(review_id, by_id[external_id], now) for review_id, external_id in inserted)

    changed_ids: list[int] = []
    unchanged_ids: list[int] = []
    for external_id, (review_id, content_hash) in existing.items():
        item = by_id[external_id]
        if item.content_hash() == content_hash:
            unchanged_ids.append(review_id)
            continue
        changed_ids.append(review_id)
        # Content changed: store it, re-score it, keep the old text in the version history.
        session.execute(
            update(Review)
            .where(Review.id == review_id)
            .values(last_seen_at=now, scored_at=None, **_content_columns(item))
        )
        versions.append(_version(review_id, item, now))
    if unchanged_ids:
        session.execute(update(Review).where(Review.id.in_(unchanged_ids)).values(last_seen_at=now))
    if versions:
        session.execute(ReviewVersion.__table__.insert(), versions)
    result.changed = len(changed_ids)
    result.unchanged = len(unchanged_ids)
    return result


def known_external_ids(session: Session, source_id: int) -> set[str]:
    return set(session.scalars(select(Review.external_id).where(Review.source_id == source_id)))
