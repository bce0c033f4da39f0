"""Scrapy settings: polite defaults, the revalidating HTTP cache, bounded downloads, our pipelines."""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

BOT_NAME = "repwatch"
# Scrapy 2.19's default, pinned: scrapy-playwright (render: true sources) refuses any other reactor.
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
SPIDER_MODULES = ["spiders.sites", "spiders.generic"]

ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 1
DOWNLOAD_DELAY = 1.0
DOWNLOAD_DELAY_JITTER = 0.5  # ±50 % (Scrapy 2.19 replaced RANDOMIZE_DOWNLOAD_DELAY with this)
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False

RETRY_ENABLED = True
RETRY_TIMES = 2
DOWNLOAD_TIMEOUT = 30
REDIRECT_MAX_TIMES = 5
# Hostile pages: a 5 MB page is plausible (read, counted in repwatch/large_pages), 20 MB is not a review page
# (cancelled, repwatch/oversize_pages); decompression stops at the same limit (repwatch/decompression_bombs).
DOWNLOAD_WARNSIZE = 5 * 1024 * 1024
DOWNLOAD_MAXSIZE = 20 * 1024 * 1024

# Only http(s) is ever fetched: Scrapy's file, data, ftp and s3 handlers are off (a "next" link to file:///dev/zero
# read the local file, with no size limit). spiders/fence.py refuses such a request before it gets here.
DOWNLOAD_HANDLERS = {"file": None, "data": None, "ftp": None, "s3": None}

HTTPCACHE_ENABLED = True
HTTPCACHE_POLICY = "spiders.cache.RevalidatePolicy"
HTTPCACHE_STORAGE = "spiders.cache.SqliteCacheStorage"
HTTPCACHE_EXPIRATION_SECS = 0
HTTPCACHE_GZIP = False

# spiders/politeness.py closes Scrapy's gaps measured in DESIGN §7: the robots.txt race, Crawl-delay, Retry-After.
DOWNLOADER = "spiders.politeness.PoliteDownloader"
DOWNLOADER_MIDDLEWARES = {
    # spiders/fence.py: http(s) only, the source's own site, no private address but the source's own (first of all).
    "spiders.fence.FenceMiddleware": 40,
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "spiders.politeness.RobotsFirstMiddleware": 100,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "spiders.politeness.RetryAfterMiddleware": 550,
    "scrapy.downloadermiddlewares.httpcache.HttpCacheMiddleware": None,
    "spiders.cache.RevalidatingCacheMiddleware": 900,
    # spiders/hostile.py: size limits and redirect loops named in the source's outcome and counted in its stats.
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
    "spiders.hostile.BoundedDecompressionMiddleware": 590,
    "spiders.hostile.PageSizeMiddleware": 585,  # after decompression, before RetryMiddleware
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "spiders.hostile.LoopAwareRedirectMiddleware": 600,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "spiders.hostile.LoopAwareMetaRefreshMiddleware": 580,
}

ITEM_PIPELINES = {
    "spiders.pipelines.normalize.NormalizePipeline": 100,
    "spiders.pipelines.dedupe.DedupePipeline": 200,
    "spiders.pipelines.store.StorePipeline": 300,
}

LOG_LEVEL = "WARNING"
LOG_INSTALL_ROOT_HANDLER = False  # the runner configures logging itself


class CrawlOptions(TypedDict):
    """config.yaml's `crawl:` section as the crawl plan carries it (spiders/runner.CrawlPlan)."""

    user_agent: str
    obey_robots: bool
    polite: bool
    download_delay: float
    concurrency: int
    browser_path: str


def crawl_settings(crawl: CrawlOptions, *, data_dir: Path, database_url: str) -> dict[str, Any]:
    """This module's settings adjusted by config.yaml's `crawl:` section."""
    from spiders.politeness import robots_token

    settings = {key: value for key, value in globals().items() if key.isupper()}
    settings.update(
        USER_AGENT=crawl["user_agent"],
        # robots.txt groups (and Crawl-delay) are matched against our product token, not the whole header.
        ROBOTSTXT_USER_AGENT=robots_token(crawl["user_agent"], BOT_NAME),
        ROBOTSTXT_OBEY=crawl["obey_robots"],
        CONCURRENT_REQUESTS_PER_DOMAIN=crawl["concurrency"],
        DOWNLOAD_DELAY=crawl["download_delay"],
        HTTPCACHE_DIR=str(data_dir / "httpcache"),
        REPWATCH_DATA_DIR=str(data_dir),  # API sources keep their OAuth tokens there (spiders/oauth.py)
        REPWATCH_DATABASE_URL=database_url,
        # The runner hands Scrapy the spider classes it needs; the stock loader would import every spider module
        # in SPIDER_MODULES first (~0.1-0.3 s of each crawl's start, more as spiders are added).
        SPIDER_LOADER_CLASS="scrapy.spiderloader.DummySpiderLoader",
    )
    if not crawl["polite"]:
        # Local benchmarks only: no delay, no throttle.
        settings.update(AUTOTHROTTLE_ENABLED=False, DOWNLOAD_DELAY=0, DOWNLOAD_DELAY_JITTER=0)
    return settings
