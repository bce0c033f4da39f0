"""Storing reviews: new means inserted once, a change makes a version, times come back in UTC."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from models.store import known_external_ids, store_reviews
from models.tables import Business, Review, ReviewVersion, Source
from spiders.items import Reply
from spiders.items import ReviewItem
from tests.conftest import START


def make_source(sessions) -> int:
    with sessions.begin() as session:
        source = Source(name="acme-tp", kind="trustpilot", url="https://example.com/review/acme",
                        business=Business(name="Acme"))
        session.add(source)
        session.flush()
        return source.id


def item(external_id: str, body: str = "Cold coffee, rude staff.", rating: float | None = 1, reply=None) -> ReviewItem:
    return ReviewItem(external_id=external_id, url=f"https://example.com/reviews/{external_id}", body=body,
                      rating=rating, author="Ann", published_at=START - timedelta(hours=5), reply=reply)


def test_new_reviews_are_inserted_once_and_counted(sessions, clock):
    source_id = make_source(sessions)
    with sessions.begin() as session:
        first = store_reviews(session, source_id, [item("a"), item("b")], now=clock.now())
    with sessions.begin() as session:
        again = store_reviews(session, source_id, [item("a"), item("b"), item("c")], now=clock.now())
    assert (first.new, first.changed) == (2, 0)
    assert (again.new, again.changed, again.unchanged) == (1, 0, 2)
    with sessions() as session:
        assert session.scalar(select(func.count(Review.id))) == 3
        assert known_external_ids(session, source_id) == {"a", "b", "c"}


def test_a_changed_review_is_versioned_and_sent_back_for_scoring(sessions, clock):
    source_id = make_source(sessions)
    with sessions.begin() as session:
        store_reviews(session, source_id, [item("a", rating=2)], now=clock.now())
        session.execute(Review.__table__.update().values(scored_at=clock.now(), sentiment_label="neg"))
    edited = item("a", body="Cold coffee, rude staff. UPDATE: they refunded me.", rating=4,
                  reply=Reply("Sorry! We fixed it.", clock.now()))
    with sessions.begin() as session:
        result = store_reviews(session, source_id, [edited], now=clock.advance(days=1))
    assert result.changed == 1
    with sessions() as session:
        review = session.scalars(select(Review)).one()
        assert review.rating == 4 and review.reply_body == "Sorry! We fixed it."
        assert review.scored_at is None  # re-scored on the next score stage
        versions = session.scalars(select(ReviewVersion).order_by(ReviewVersion.id)).all()
        assert [v.rating for v in versions] == [2, 4]
        assert versions[0].body == "Cold coffee, rude staff."


def test_timestamps_round_trip_as_utc(sessions, clock):
    source_id = make_source(sessions)
    with sessions.begin() as session:
        store_reviews(session, source_id, [item("a")], now=clock.now())
    with sessions() as session:
        review = session.scalars(select(Review)).one()
        assert review.published_at == START - timedelta(hours=5)
        assert review.published_at.tzinfo is not None
        assert review.first_seen_at == clock.now()


def test_a_batch_of_thousands_is_a_few_statements(sessions, clock):
    source_id = make_source(sessions)
    items = [item(f"id-{n}", body=f"review number {n}") for n in range(2500)]
    with sessions.begin() as session:
        result = store_reviews(session, source_id, items, baseline=True, now=clock.now())
    assert result.new == 2500
    with sessions() as session:
        assert session.scalar(select(func.count(Review.id)).where(Review.baseline)) == 2500
        assert session.scalar(select(func.count(ReviewVersion.id))) == 2500


def test_removal_and_reappearance_are_recorded_as_versions(sessions, clock):
    from models.store import mark_removed

    source_id = make_source(sessions)
    first = clock.now()
    with sessions.begin() as session:
        store_reviews(session, source_id, [item("a"), item("b")], now=first)
    # A day later a complete crawl sees only "a": "b" was taken down.
    removed = clock.advance(days=1)
    with sessions.begin() as session:
        store_reviews(session, source_id, [item("a")], now=removed)
        assert mark_removed(session, source_id, not_seen_since=removed, now=removed) == 1
    reappeared = clock.advance(days=1)
    with sessions.begin() as session:
        assert mark_removed(session, source_id, not_seen_since=removed) == 0  # once
        result = store_reviews(session, source_id, [item("b")], now=reappeared)
    assert result.changed == 1
    with sessions() as session:
        b = session.scalars(select(Review).where(Review.external_id == "b")).one()
        assert b.removed_at is None
        assert [(v.change, v.seen_at) for v in b.versions] == [
            ("first", first), ("removed", removed), ("reappeared", reappeared)]
        assert b.versions[1].body == "Cold coffee, rude staff."  # what it said when it was taken down
