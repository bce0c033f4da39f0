"""Drop a review seen twice in one crawl (sites repeat reviews across pages while they shift)."""
from __future__ import annotations

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from spiders.items import ReviewItem


class DedupePipeline:
    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.seen: set[tuple[str, str]] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupePipeline:
        return cls(crawler)

    def process_item(self, item: ReviewItem) -> ReviewItem:
        key = (item.source, item.external_id)
        if key in self.seen:
            self.crawler.stats.inc_value("repwatch/duplicates_dropped")
            raise DropItem(f"duplicate review {item.external_id}")
        self.seen.add(key)
        return item
