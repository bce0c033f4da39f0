"""Write reviews to the database in batches as they are crawled (raw reviews land fast; scoring is elsewhere)."""
from __future__ import annotations

import logging
from collections.abc import Sequence

from scrapy.crawler import Crawler
from sqlalchemy.exc import InterfaceError, OperationalError

from models.db import connect, session_factory
from models.store import store_reviews
from spiders.base import ReviewSpider
from spiders.items import ReviewItem

BATCH_SIZE = 100
logger = logging.getLogger(__name__)


def is_database_trouble(exc: Exception) -> bool:
    """An error of the database itself (a full disk, a lock, a lost connection), which every review would meet: not
    one review's data that the database refuses (a lone surrogate for SQLite, NUL for PostgreSQL, a broken value)."""
    return isinstance(exc, OperationalError | InterfaceError) or bool(getattr(exc, "connection_invalidated", False))


def _one_line(text: object) -> str:
    """One line of ASCII (control characters and surrogates escaped): safe in the run's stats, in either database."""
    return " ".join(str(text).split()).encode("ascii", "backslashreplace").decode()[:300]


def _reason(exc: Exception) -> str:
    return _one_line(getattr(exc, "orig", None) or exc)


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
        """Store the batch in one transaction; if the database refuses one of its reviews, store them one by one so
        that the others land and only the refused one is counted (`repwatch/unstorable_reviews`)."""
        if not self.batch:
            return
        spider = self.crawler.spider
        if not isinstance(spider, ReviewSpider):
            raise TypeError(f"StorePipeline stores a ReviewSpider's reviews (source_id, baseline), not {spider!r}'s")
        try:
            self._store(spider, self.batch)
        except Exception as exc:
            if is_database_trouble(exc):
                self._failed(exc)
                raise
            self._store_one_by_one(spider)
        self.batch = []

    def _store_one_by_one(self, spider: ReviewSpider) -> None:
        stats = self.crawler.stats
        while self.batch:
            item = self.batch[0]
            try:
                self._store(spider, [item])
            except Exception as exc:
                if is_database_trouble(exc):
                    self._failed(exc)  # the rest of the batch stays for the next flush
                    raise
                review = _one_line(repr(item.external_id))
                stats.inc_value("repwatch/unstorable_reviews")
                stats.set_value("repwatch/unstorable_review", f"review {review}: {_reason(exc)}")
                logger.warning("source %s: review %s not stored: %s", item.source, review, _reason(exc))
            del self.batch[0]

    def _store(self, spider: ReviewSpider, items: Sequence[ReviewItem]) -> None:
        with self.sessions.begin() as session:
            result = store_reviews(session, spider.source_id, items, baseline=spider.baseline)
        stats = self.crawler.stats
        stats.inc_value("repwatch/items", len(items))
        stats.inc_value("repwatch/new", result.new)
        stats.inc_value("repwatch/changed", result.changed)

    def _failed(self, exc: Exception) -> None:
        """The batch stays for the next flush; the run must not end "ok" (spiders/runner.run_outcome)."""
        stats = self.crawler.stats
        stats.inc_value("repwatch/store_errors")
        stats.set_value("repwatch/store_error", _reason(exc))
