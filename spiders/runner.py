"""The crawl child process: one Scrapy reactor for one crawl plan, results written to each CrawlRun row.

Run as `python -m spiders.runner PLAN.json`; monitor/crawl.py writes the plan and waits. Scrapy's Twisted reactor
cannot restart, so every crawl gets a fresh process (DESIGN §7).
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler, CrawlerProcess
from sqlalchemy import update

from models.db import connect, session_factory
from models.store import known_external_ids
from models.tables import CrawlRun
from spiders.registry import load_spiders
from spiders.settings import crawl_settings


def run_outcome(stats: dict[str, Any], reason: str, *, had_reviews: bool) -> tuple[str, str | None]:
    """Decide ok / blocked / failed / broken for one finished spider from its stats (DESIGN §5.7)."""
    pages = stats.get("repwatch/pages", 0)
    items = stats.get("repwatch/items", 0)
    if vendor := stats.get("repwatch/blocked"):
        return "blocked", f"blocked: {vendor} at {stats.get('repwatch/blocked_url')}"
    if pages == 0:
        if error := stats.get("repwatch/last_error"):
            return "failed", error
        if stats.get("robotstxt/forbidden"):
            return "failed", "robots.txt forbids the source URL"
        return "failed", f"no page was fetched (crawl ended: {reason})"
    if reason != "finished":
        return "failed", f"crawl ended early: {reason}"
    if items == 0 and had_reviews:
        return "broken", "the page returned no reviews where it used to (layout changed?)"
    if stats.get("repwatch/fetch_errors"):
        return "ok", f"some pages failed: {stats.get('repwatch/last_error')}"
    return "ok", None


def _record_run(crawler: Crawler, run_id: int, had_reviews: bool, sessions, reason: str) -> None:
    stats = crawler.stats.get_stats()
    outcome, error = run_outcome(stats, reason, had_reviews=had_reviews)
    plain_stats = {k: v for k, v in stats.items() if isinstance(v, int | float | str) and not k.startswith("log_count/DEBUG")}
    with sessions.begin() as session:
        session.execute(
            update(CrawlRun)
            .where(CrawlRun.id == run_id)
            .values(
                finished_at=datetime.now(UTC),
                requests=stats.get("downloader/request_count", 0),
                pages=stats.get("repwatch/pages", 0),
                items=stats.get("repwatch/items", 0),
                new=stats.get("repwatch/new", 0),
                changed=stats.get("repwatch/changed", 0),
                errors=stats.get("repwatch/fetch_errors", 0) + stats.get("log_count/ERROR", 0),
                blocked=stats.get("repwatch/blocked"),
                outcome=outcome,
                error=error,
                stats=plain_stats,
            )
        )


def run_plan(plan: dict[str, Any]) -> None:
    database_url = plan["database_url"]
    settings = crawl_settings(plan["crawl"], data_dir=Path(plan["data_dir"]), database_url=database_url)
    engine = connect(database_url)
    sessions = session_factory(engine)
    spiders = load_spiders()
    process = CrawlerProcess(settings, install_root_handler=False)
    # Scrapy leaves its loggers at NOTSET: without this every item builds a DEBUG record nobody reads.
    logging.getLogger("scrapy").setLevel(logging.WARNING)
    for source in plan["sources"]:
        with sessions() as session:
            known = known_external_ids(session, source["source_id"])
        # After an interrupted run the stop-at-known rule could skip pages never stored: crawl them all.
        known_for_paging = known if source["incremental"] else ()
        crawler = process.create_crawler(spiders[source["kind"]])

        def on_closed(spider, reason, _crawler=crawler, _run=source["run_id"], _had=bool(known)) -> None:
            _record_run(_crawler, _run, _had, sessions, reason)

        crawler.signals.connect(on_closed, signal=signals.spider_closed, weak=False)
        process.crawl(
            crawler,
            url=source["url"],
            source=source["name"],
            known_ids=known_for_paging,
            max_pages=source["max_pages"],
            options=source["options"],
            source_id=source["source_id"],
            run_id=source["run_id"],
            baseline=source["baseline"],
        )
    process.start()
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    plan = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    run_plan(plan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
