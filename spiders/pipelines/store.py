"""Write reviews to the database in batches as they are crawled (raw reviews land fast; scoring is elsewhere)."""
from __future__ import annotations

from scrapy.crawler import Crawler

from models.db import connect, session_factory
from models.store import store_reviews
from spiders.base import ReviewSpider
from spiders.items import ReviewItem

BATCH_SIZE = 100


class StorePipeline:
    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.batch: list[ReviewItem] = []
        self.engine = connect(crawler.settings["REPWATCH_DATABASE_URL"])
        self.sessions = session_factory(self.engine)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        return cls(crawler)

    def process_item(self, item: ReviewItem) -> ReviewItem:
        self.batch.append(item)
        if len(self.batch) >= BATCH_SIZE:
            self.flush()
        return item

    def close_spider(self) -> None:
        self.flush()
        self.engine.dispose()

    def flush(self) -> None:
        if not self.batch:
            return
        spider = self.crawler.spider
        if not isinstance(spider, ReviewSpider):
            raise TypeError(f"StorePipeline stores a ReviewSpider's reviews (source_id, baseline), not {spider!r}'s")
        stats = self.crawler.stats
        try:
            with self.sessions.begin() as session:
                result = store_reviews(session, spider.source_id, self.batch, baseline=spider.baseline)
        except Exception as exc:
            # The batch stays for the next flush; the run must not end "ok" (spiders/runner.run_outcome).
            stats.inc_value("repwatch/store_errors")
            stats.set_value("repwatch/store_error", " ".join(str(getattr(exc, "orig", None) or exc).split())[:300])
            raise
        stats.inc_value("repwatch/items", len(self.batch))
        stats.inc_value("repwatch/new", result.new)
        stats.inc_value("repwatch/changed", result.changed)
        self.batch = []
