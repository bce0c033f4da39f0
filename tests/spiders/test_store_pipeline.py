"""StorePipeline: batches land whole; a review the database refuses never sinks the rest of its batch."""
from __future__ import annotations

from scrapy.utils.test import get_crawler
from sqlalchemy import select

from models.tables import Review
from spiders.generic.schema_org import SchemaOrgSpider
from spiders.items import ReviewItem
from spiders.pipelines.store import StorePipeline
from tests.models.test_store import make_source


def pipeline_for(database_url: str, source_id: int) -> StorePipeline:
    crawler = get_crawler(SchemaOrgSpider, {"REPWATCH_DATABASE_URL": database_url})
    crawler.spider = crawler._create_spider(url="https://cafe.example/", source_id=source_id, baseline=False)
    return StorePipeline.from_crawler(crawler)


def review(external_id: str, url: str = "https://cafe.example/reviews") -> ReviewItem:
    return ReviewItem(external_id=external_id, url=url, body="Cold coffee, rude staff.", rating=1, source="cafe")


def test_a_review_the_database_refuses_is_counted_and_the_rest_of_its_batch_is_stored(database_url, sessions):
    """Items as no spider of ours yields them (normalize cleans ids and links): a lone surrogate, which neither
    database takes, and a NUL, which PostgreSQL refuses."""
    pipeline = pipeline_for(database_url, make_source(sessions))
    for item in [review("ok-1"), review("bad-\ud800"), review("ok-2"), review("nul-link", "https://cafe.example/\x00"),
                 review("ok-3")]:
        pipeline.process_item(item)
    pipeline.close_spider()

    with sessions() as session:
        stored = set(session.scalars(select(Review.external_id)))
    stats = pipeline.crawler.stats.get_stats()
    refused = 2 if database_url.startswith("postgresql") else 1  # SQLite stores NUL
    assert stored == {"ok-1", "ok-2", "ok-3"} | ({"nul-link"} if refused == 1 else set())
    assert stats["repwatch/unstorable_reviews"] == refused
    assert stats["repwatch/items"] == 5 - refused
    assert "repwatch/store_errors" not in stats  # the run is not failed for it
    assert "'bad-\\ud800'" in stats["repwatch/unstorable_review"] or "nul-link" in stats["repwatch/unstorable_review"]
