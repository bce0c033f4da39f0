"""HTTP caching for review pages: always revalidate, and never let a cached copy hide a block or an outage."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from scrapy import Spider
from scrapy.downloadermiddlewares.httpcache import HttpCacheMiddleware
from scrapy.extensions.httpcache import RFC2616Policy
from scrapy.http import Request, Response
from scrapy.settings import BaseSettings
from scrapy.utils.response import response_from_dict
from w3lib.http import headers_dict_to_raw, headers_raw_to_dict


class RevalidatePolicy(RFC2616Policy):
    """Conditional GET on every crawl.

    Scrapy's RFC 2616 policy (DESIGN §7) treats a page with no Cache-Control and an old Last-Modified as fresh
    for days (new reviews missed) and refetches `no-cache` pages without validators. Review pages change
    without telling caches, so a cached copy is only ever used after the site answers 304 Not Modified.
    """

    def is_cached_response_fresh(self, cachedresponse: Response, request: Request) -> bool:
        self._set_conditional_validators(request, cachedresponse)
        return False

    def is_cached_response_valid(self, cachedresponse: Response, response: Response, request: Request) -> bool:
        # The parent serves the cached page on any 5xx; a 503 challenge must reach the block check instead.
        return response.status == 304


class RevalidatingCacheMiddleware(HttpCacheMiddleware):
    """The stock cache middleware, minus "error recovery".

    On a download error Scrapy hands the spider the cached copy (`httpcache/errorrecovery`), so an unreachable
    site looks healthy and its source is never reported failing. We let the error through.
    """

    def process_exception(self, request: Request, exception: Exception, spider: Spider | None = None) -> None:
        request.meta.pop("cached_response", None)
        return None


class SqliteCacheStorage:
    """HTTP cache in one SQLite file: a row per page, replaced when the page changes.

    Scrapy's filesystem storage writes seven files per response (~3 s of a 500-page crawl here); DBM needs a
    gdbm/ndbm build that many Pythons lack. A cache lost to a crash costs one full fetch, so durability is relaxed.
    """

    def __init__(self, settings: BaseSettings):
        self.path = Path(settings["HTTPCACHE_DIR"]) / "httpcache.sqlite"
        self.db: sqlite3.Connection | None = None

    def open_spider(self, spider: Spider) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS response (fingerprint BLOB PRIMARY KEY, url TEXT, status INTEGER,"
            " headers BLOB, body BLOB, stored_at REAL)"
        )
        self._fingerprint = spider.crawler.request_fingerprinter.fingerprint

    def close_spider(self, spider: Spider) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def _open_db(self) -> sqlite3.Connection:
        if self.db is None:
            raise RuntimeError("the HTTP cache is used outside open_spider/close_spider")
        return self.db

    def retrieve_response(self, spider: Spider, request: Request) -> Response | None:
        row = self._open_db().execute(
            "SELECT url, status, headers, body, stored_at FROM response WHERE fingerprint = ?",
            (self._fingerprint(request),),
        ).fetchone()
        if row is None:
            return None
        url, status, headers, body, stored_at = row
        request.meta["cache_timestamp"] = stored_at
        return response_from_dict({"url": url, "status": status, "headers": headers_raw_to_dict(headers), "body": body})

    def store_response(self, spider: Spider, request: Request, response: Response) -> None:
        self._open_db().execute(
            "INSERT OR REPLACE INTO response VALUES (?, ?, ?, ?, ?, ?)",
            (
                self._fingerprint(request),
                response.url,
                response.status,
                headers_dict_to_raw(response.headers),
                response.body,
                time.time(),
            ),
        )
