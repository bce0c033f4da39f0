"""Benchmark baseline: a bare Scrapy spider that parses the bench site's pages and nothing else (no storage, no scoring)."""
from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import AsyncIterator
from typing import Any

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response

NEXT_LINK = 'a[data-pagination-button-next-link="true"]::attr(href)'


class BareSpider(scrapy.Spider):
    """The same per-page work as a real site spider: json.loads of __NEXT_DATA__, one dict per review, next link."""

    name = "bare"

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.pages = 0
        self.items = 0

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(self.url)

    def parse(self, response: Response, **kwargs: Any):
        self.pages += 1
        data = json.loads(response.css("script#__NEXT_DATA__::text").get())
        for review in data["props"]["pageProps"]["reviews"]:
            reply = review.get("reply")
            self.items += 1
            yield {
                "external_id": review["id"],
                "url": response.urljoin(f"/reviews/{review['id']}"),
                "author": review["consumer"]["displayName"],
                "rating": review["rating"],
                "title": review["title"],
                "body": review["text"],
                "published_at": review["dates"]["publishedDate"],
                "language": review["language"],
                "reply": {"body": reply["message"], "published_at": reply["publishedDate"]} if reply else None,
            }
        next_href = response.css(NEXT_LINK).get()
        if next_href:
            yield response.follow(next_href)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    process = CrawlerProcess(
        settings={
            "ROBOTSTXT_OBEY": False,
            "AUTOTHROTTLE_ENABLED": False,
            "DOWNLOAD_DELAY": 0,
            "CONCURRENT_REQUESTS": args.concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
            "HTTPCACHE_ENABLED": False,
            "TELNETCONSOLE_ENABLED": False,
            "LOG_LEVEL": "WARNING",
            "ITEM_PIPELINES": {},
        }
    )
    crawler = process.create_crawler(BareSpider)
    started = time.perf_counter()
    process.crawl(crawler, url=args.url)
    process.start()
    seconds = time.perf_counter() - started
    spider = crawler.spider
    print(
        json.dumps(
            {
                "pages": spider.pages,
                "items": spider.items,
                "seconds": round(seconds, 3),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
