"""The crawl child process: one Scrapy reactor for one crawl plan, results written to each CrawlRun row.

Run as `python -m spiders.runner PLAN.json`; monitor/service/crawl.py writes the plan and waits. Scrapy's Twisted reactor
cannot restart, so every crawl gets a fresh process (DESIGN §7).
"""
from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from sqlalchemy.orm import Session, sessionmaker

    from spiders.base import ReviewSpider
    from spiders.settings import CrawlOptions

# Scrapy, SQLAlchemy and the models are imported in run_plan, after main() has switched the cyclic GC off: the
# imports make ~1 M objects and the collector walked them a few times (~0.2 s of a crawl's start).


class SourcePlan(TypedDict):
    """One source to crawl, and the CrawlRun row its outcome is written to."""

    source_id: int
    run_id: int
    name: str
    kind: str
    url: str
    max_pages: int
    options: dict[str, Any]
    render: NotRequired[bool]  # without it the source is fetched plainly
    obey_robots: NotRequired[bool]  # without it the crawl's own setting holds
    download_delay: NotRequired[float]  # the source's own pacing; without them the crawl's own settings hold
    concurrency: NotRequired[int]
    baseline: bool  # the source's first crawl
    incremental: bool  # stop paging at a page of known reviews
    allow_empty: NotRequired[bool]  # a source that may list no reviews yet: zero read is ok, not `empty`


class CrawlPlan(TypedDict):
    """The PLAN.json this process reads; monitor/service/crawl.py writes it."""

    database_url: str
    data_dir: str
    crawl: CrawlOptions
    sources: list[SourcePlan]
    parent_pid: NotRequired[int]  # set when a parent waits for us: we die with it (die_with_parent)
    log_file: NotRequired[str]  # the crawl log (rotated); without it, log lines go to stderr
    progress: NotRequired[bool]  # report pages and reviews read on stdout as they come (spiders.base.emit_progress)


# The crawl log: a few MB of timestamped lines per source and page, kept with a few older files, never unbounded.
LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 5


def crawl_log_handler(path: Path) -> logging.Handler:
    """The rotating handler of the crawl log (UTC timestamps); the crawl child and `repwatch crawl` both write it."""
    from logging.handlers import RotatingFileHandler

    handler = RotatingFileHandler(path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    formatter = logging.Formatter("%(asctime)sZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    return handler


def setup_logging(log_file: str | None) -> None:
    """Warnings of every library, and repwatch's own INFO lines (one per page, one per source), to the crawl log."""
    handler = crawl_log_handler(Path(log_file)) if log_file else logging.StreamHandler(sys.stderr)
    if not log_file:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("repwatch").setLevel(logging.INFO)


def _evidence(stats: dict[str, Any]) -> str:
    """The page behind a blocked or broken verdict: URL, HTTP status and the body's hash."""
    return (
        f"{stats.get('repwatch/evidence_url')} (HTTP {stats.get('repwatch/evidence_status')}, "
        f"body sha256 {str(stats.get('repwatch/evidence_sha256'))[:16]})"
    )


# What SQLite and the OS say when the data directory cannot be written (a full disk, a quota, a file size limit):
# trouble here, not at the site, and never a reason to call the run ok.
LOCAL_WRITE_ERRORS = (
    "database or disk is full", "disk I/O error", "No space left on device", "File too large", "Disk quota exceeded",
    "attempt to write a readonly database", "Read-only file system",
)


def _local_write_error(text: object) -> bool:
    return isinstance(text, str) and any(marker in text for marker in LOCAL_WRITE_ERRORS)


# What the operator can do about a bot wall (the message names the vendor; the state already says `blocked`).
BLOCKED_ADVICE = ("repwatch tries again on the next crawl; if it stays blocked, crawl less often (schedule:), "
                  "give crawl.user_agent a contact, or try render: true (docs/sources.md#when-a-source-goes-wrong)")


def empty_hint(url: str) -> str:
    """What to try when a page gave no reviews: the kind may not fit the page."""
    return (f"check the kind; try `repwatch extract {url} --spider auto` (a page that builds its reviews with "
            "JavaScript needs render: true)")


def run_outcome(stats: dict[str, Any], reason: str, *, had_reviews: bool, allow_empty: bool = False,
                url: str = "") -> tuple[str, str | None]:
    """Decide ok / blocked / failed / broken / empty for one finished spider from its stats (DESIGN §5.7).

    `empty`: pages were read but no review was, on a source that never had any: a wrong kind or URL watches
    nothing, and must not pass for `ok` (unless the source is configured `allow_empty: true`).
    """
    pages = stats.get("repwatch/pages", 0)
    items = stats.get("repwatch/items", 0)
    # A page cached or a review stored must not fail for want of disk and still count as an ok run: the reviews it
    # held would be missing with no word said (found with a file size limit standing in for a full disk).
    for error in (stats.get("repwatch/store_error"), stats.get("repwatch/last_error")):
        if _local_write_error(error):
            return "failed", f"cannot write to the data directory (disk full?): {error}"
    if store_error := stats.get("repwatch/store_error"):
        batches = stats.get("repwatch/store_errors", 1)
        return "failed", f"{batches} batch{'es' if batches != 1 else ''} of reviews could not be stored: {store_error}"
    if vendor := stats.get("repwatch/blocked"):
        return "blocked", f"{vendor} answered instead of the page at {_evidence(stats)}; {BLOCKED_ADVICE}"
    if pages == 0:
        if error := stats.get("repwatch/last_error"):
            return "failed", error
        if stats.get("robotstxt/forbidden"):
            return "failed", "robots.txt forbids the source URL"
        return "failed", f"no page was fetched (crawl ended: {reason})"
    if reason != "finished":
        return "failed", f"crawl ended early: {reason}"
    if items == 0 and had_reviews:
        return "broken", f"no reviews where there used to be some (layout changed?) at {_evidence(stats)}"
    if items == 0 and not allow_empty:
        page = str(stats.get("repwatch/evidence_url") or url)
        return "empty", f"no reviews read at {page}: {empty_hint(url or page)}"
    if stats.get("repwatch/fetch_errors"):
        return "ok", f"some pages failed: {stats.get('repwatch/last_error')}"
    return "ok", None


def _record_run(
    crawler: Crawler, source: SourcePlan, had_reviews: bool, sessions: sessionmaker[Session], reason: str,
    progress: bool = False,
) -> None:
    from sqlalchemy import update

    from models.tables import CrawlRun
    from spiders.base import emit_progress

    stats = crawler.stats.get_stats()
    run_id = source["run_id"]
    outcome, error = run_outcome(stats, reason, had_reviews=had_reviews, allow_empty=source.get("allow_empty", False),
                                 url=source["url"])
    started = stats.get("start_time")
    seconds = (datetime.now(UTC) - started).total_seconds() if isinstance(started, datetime) else 0.0
    pages, items = stats.get("repwatch/pages", 0), stats.get("repwatch/items", 0)
    logging.getLogger("repwatch.crawl").log(
        logging.INFO if outcome == "ok" else logging.WARNING,
        "source %s: %s, %d page%s, %d review%s (%d new), %.1f s%s", source["name"], outcome, pages,
        "" if pages == 1 else "s", items, "" if items == 1 else "s", stats.get("repwatch/new", 0), seconds,
        f": {error}" if error else "")
    if progress:
        emit_progress({"source": source["name"], "pages": pages, "reviews": items, "done": True, "outcome": outcome,
                       "seconds": round(seconds, 2)})
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


def spider_class(kind: str) -> type[ReviewSpider]:
    """The spider for `kind`, importing only its own module (spider name = module name, DESIGN §5.3).

    Importing every spider module cost ~0.25 s per crawl (extruct and BeautifulSoup among them); the full registry
    is still loaded when the module is not where the convention puts it.
    """
    from spiders.base import SPIDERS
    from spiders.registry import SPIDER_PACKAGES, load_spiders

    if kind.isidentifier():
        for package in SPIDER_PACKAGES:
            if kind not in SPIDERS and importlib.util.find_spec(f"{package}.{kind}") is not None:
                importlib.import_module(f"{package}.{kind}")
        if kind in SPIDERS:
            return SPIDERS[kind]
    return load_spiders()[kind]


# --- render: true (headless Chromium through scrapy-playwright) -------------------------------------------------

def _render_settings(
    crawl: CrawlOptions, source: SourcePlan, sessions: sessionmaker[Session]
) -> dict[str, Any] | None:
    """Settings for a rendered source's crawler, or None after recording the run as failed (no browser).

    Imported here only: sources that do not render never load playwright nor start a browser.
    """
    from spiders.render import render_problem, render_settings

    problem = render_problem(crawl["browser_path"])
    if problem is None:
        return render_settings(crawl["browser_path"])
    from sqlalchemy import update

    from models.tables import CrawlRun

    with sessions.begin() as session:
        session.execute(
            update(CrawlRun)
            .where(CrawlRun.id == source["run_id"])
            .values(finished_at=datetime.now(UTC), outcome="failed", error=problem)
        )
    return None


# --- robots.txt per source (politeness: spiders/politeness.py) ----------------------------------------------------

def _robots_settings(crawl: CrawlOptions, source: SourcePlan) -> dict[str, Any]:
    """This source's crawler obeys robots.txt unless the plan says otherwise for it; not obeying is logged."""
    obey = source.get("obey_robots", crawl["obey_robots"])
    if not obey:
        logging.getLogger("spiders.runner").warning(
            "source %s: robots.txt is NOT obeyed (obey_robots: false in config.yaml)", source["name"]
        )
    return {"ROBOTSTXT_OBEY": bool(obey)}


def _pacing_settings(source: SourcePlan) -> dict[str, Any]:
    """This source's own download delay and concurrency (its download slot is its own: spiders/politeness.py)."""
    settings: dict[str, Any] = {}
    if "download_delay" in source:
        settings["DOWNLOAD_DELAY"] = float(source["download_delay"])
    if "concurrency" in source:
        settings["CONCURRENT_REQUESTS_PER_DOMAIN"] = int(source["concurrency"])
    return settings


def run_plan(plan: CrawlPlan) -> None:
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    from models.db import connect, session_factory
    from models.store import known_external_ids
    from spiders.settings import crawl_settings

    database_url = plan["database_url"]
    settings = crawl_settings(plan["crawl"], data_dir=Path(plan["data_dir"]), database_url=database_url)
    engine = connect(database_url)
    sessions = session_factory(engine)
    process = CrawlerProcess(settings)
    # Scrapy leaves its loggers at NOTSET: without this every item builds a DEBUG record nobody reads.
    logging.getLogger("scrapy").setLevel(logging.WARNING)
    for source in plan["sources"]:
        with sessions() as session:
            known = known_external_ids(session, source["source_id"])
        # After an interrupted run the stop-at-known rule could skip pages never stored: crawl them all.
        known_for_paging = known if source["incremental"] else ()
        render = _render_settings(plan["crawl"], source, sessions) if source.get("render") else {}
        if render is None:
            continue  # recorded as failed: nothing to render with
        crawler = process.create_crawler(spider_class(source["kind"]))
        crawler.settings.update(render, priority="spider")  # this crawler only; not frozen until crawl()
        crawler.settings.update(_robots_settings(plan["crawl"], source), priority="spider")
        crawler.settings.update(_pacing_settings(source), priority="spider")

        def on_closed(
            spider: Spider, reason: str,
            _crawler: Crawler = crawler, _source: SourcePlan = source, _had: bool = bool(known),
        ) -> None:
            _record_run(_crawler, _source, _had, sessions, reason, progress=bool(plan.get("progress")))

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
            render=bool(source.get("render")),
            progress=bool(plan.get("progress")),
        )
    # What exists now (modules, settings, spiders) lives as long as the process: out of the collector's sight.
    # Measured on a 500-page crawl: the collector took ~0.65 s as it was, ~0.25 s with the freeze, ~0.19 s with
    # the first threshold at 2,000 (a page's JSON rarely reaches it). Higher thresholds save little more and let
    # each page's cyclic garbage pile up (10,000: +40 MB peak RSS; 50,000: +330 MB).
    gc.freeze()
    gc.set_threshold(2_000, 10, 10)
    gc.enable()
    process.start()
    engine.dispose()


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int | None) -> None:
    """End this process when the `repwatch crawl` that started it dies, even by SIGKILL.

    The parent holds the source's lock and records the run's outcome; a crawl going on without it would race the
    next crawl of the same source (found by bench/crash_harness.py: orphans crawled on for seconds after a kill).
    On Linux the kernel sends SIGKILL the moment the parent goes (PR_SET_PDEATHSIG; it is tied to the parent's
    forking thread, and monitor/service/crawl.py forks from the thread that waits for us); elsewhere a watchdog thread
    notices within a second. Either way, a parent already gone before this ran is caught by the getppid check.
    """
    if parent is None:
        return  # run by hand or by a test: nobody to follow
    watched = False
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        watched = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    if os.getppid() != parent:
        os._exit(1)  # the parent died between starting us and the prctl: nobody will read our result
    if not watched:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)  # a watchdog's period, not a wait for something
            os._exit(1)

        threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    gc.disable()  # until run_plan has imported and set up everything (see there)
    argv = sys.argv[1:] if argv is None else argv
    plan_path = Path(argv[0])
    plan: CrawlPlan = json.loads(plan_path.read_text(encoding="utf-8"))
    setup_logging(plan.get("log_file"))
    die_with_parent(plan.get("parent_pid"))
    if plan.get("parent_pid") is not None:
        # Ours to remove: it names the database (a password, for some), and a parent killed now never cleans up.
        plan_path.unlink(missing_ok=True)
    run_plan(plan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
