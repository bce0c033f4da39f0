"""One crawl run: sync config to the database, crawl in a child process, record outcomes and source health."""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import sqlite_write_lock_first
from models.files import PRIVATE_UMASK, private_dir, private_opener
from models.store import mark_removed
from models.tables import Business, CrawlRun, Source
from monitor.config import Config, SourceConfig
from monitor.service.locks import serialize_transaction
from spiders.runner import CrawlPlan, crawl_log_handler, spider_class


@dataclass
class SourceOutcome:
    name: str
    outcome: str
    error: str | None = None
    requests: int = 0
    pages: int = 0
    items: int = 0
    new: int = 0
    changed: int = 0
    removed: int = 0
    baseline: bool = False  # the source's first crawl: what it stored is a silent baseline
    notes: list[str] = field(default_factory=list)  # the run's data-quality notes (pages failed, cut short, …)


@dataclass
class CrawlResult:
    sources: list[SourceOutcome] = field(default_factory=list)

    @property
    def failures(self) -> list[SourceOutcome]:
        return [s for s in self.sources if s.outcome != "ok"]


def sync_config(session: Session, config: Config) -> dict[str, Source]:
    """Make the business and source rows match config.yaml (by name); returns sources by name."""
    serialize_transaction(session, "_sync")  # concurrent crawls on other machines would insert the same rows
    # and on SQLite, concurrent crawls on this one: otherwise both read "no such business" and the second one's
    # insert fails on the unique name once the first commits
    sqlite_write_lock_first(session.connection())
    businesses = {b.name: b for b in session.scalars(select(Business))}
    sources = {s.name: s for s in session.scalars(select(Source))}
    for business_config, source_config in config.sources():
        business = businesses.get(business_config.name)
        if business is None:
            business = businesses[business_config.name] = Business(name=business_config.name)
            session.add(business)
        source = sources.get(source_config.name)
        if source is None:
            source = sources[source_config.name] = Source(
                name=source_config.name, kind=source_config.kind, url=source_config.url, business=business
            )
            session.add(source)
        elif (source.kind, source.url) != (source_config.kind, source_config.url):
            # A new address is a new page to learn: its first crawl is a silent baseline again.
            source.kind, source.url, source.baseline_at, source.state = source_config.kind, source_config.url, None, "new"
        source.business = business
    session.flush()
    return sources


def _plan(config: Config, runs: list[tuple[SourceConfig, Source, CrawlRun]], full: bool) -> CrawlPlan:
    crawl = config.crawl
    return {
        "database_url": config.database_url(),
        "data_dir": str(config.data_dir),
        "crawl": {
            "user_agent": crawl.user_agent,
            "obey_robots": crawl.obey_robots,
            "polite": crawl.polite,
            "download_delay": crawl.download_delay,
            "concurrency": crawl.concurrency,
            "browser_path": str(crawl.browser_path),
        },
        "sources": [
            {
                "source_id": source.id,
                "run_id": run.id,
                "name": source.name,
                "kind": source.kind,
                # As the site must be asked for every review newest first (config check says so once).
                "url": spider_class(source.kind).crawl_url(source.url),
                "max_pages": source_config.max_pages or crawl.max_pages,
                "options": source_config.options,
                "render": source_config.render,
                "obey_robots": crawl.obey_robots if source_config.obey_robots is None else source_config.obey_robots,
                "baseline": source.baseline_at is None,
                # a search for mentions (reddit, bluesky, …) or a feed may rightly find nothing this time
                "allow_empty": source_config.allow_empty or spider_class(source.kind).may_be_empty,
                # Stop paging at known reviews only when the last run finished cleanly (and no full crawl is asked).
                "incremental": not full and source.baseline_at is not None and source.state == "ok",
            }
            for source_config, source, run in runs
        ],
    }


# A crawl's progress for the person watching, one event per page read and one per source done: {"source",
# "pages", "reviews"} and, when the source is done, "done": True, "outcome" and "seconds".
Progress = Callable[[dict[str, Any]], None]


def _read_progress(stream: IO[bytes], progress: Progress | None) -> None:
    """Drain the child's stdout (its progress lines), handing each event to `progress`."""
    for line in stream:
        if progress is None:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue  # something else printed on stdout: not ours to show
        if isinstance(event, dict):
            progress(event)


def _log_child_output(log_path: Path, output: bytes) -> None:
    """What the child printed outside its log (a traceback on a crash), into the crawl log."""
    text = output.decode("utf-8", "replace").strip()
    if not text:
        return
    handler = crawl_log_handler(log_path)
    try:
        handler.emit(logging.makeLogRecord({"name": "repwatch.crawl", "levelno": logging.ERROR, "levelname": "ERROR",
                                            "msg": "crawl process output:\n%s", "args": (text[-64_000:],)}))
    finally:
        handler.close()


def _run_child(plan_path: Path, timeout: float, log_path: Path, progress: Progress | None = None) -> str | None:
    """Run the crawl child; returns an error line if it did not exit cleanly."""
    open(log_path, "ab", opener=private_opener).close()  # 0600 from the start: the handlers only append to it
    with tempfile.TemporaryFile() as output:
        child = subprocess.Popen(
            [sys.executable, "-m", "spiders.runner", str(plan_path)],
            stdout=subprocess.PIPE,
            stderr=output,
            start_new_session=True,  # so a timeout can stop the whole group
            umask=PRIVATE_UMASK,  # its HTTP cache, its log and anything else it writes under data_dir: 0600
        )
        assert child.stdout is not None
        reader = threading.Thread(target=_read_progress, args=(child.stdout, progress), name="crawl-progress",
                                  daemon=True)
        reader.start()
        try:
            code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return f"crawl timed out after {timeout:.0f} s"
        except BaseException:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise
        finally:
            reader.join(timeout=5)
            child.stdout.close()
            output.seek(0)
            _log_child_output(log_path, output.read())
    if code != 0:
        return f"crawl process exited with code {code} (see {log_path})"
    return None


def run_crawl(
    config: Config, sessions: sessionmaker[Session], source_names: list[str] | None = None, *, full: bool = False,
    progress: Progress | None = None,
) -> CrawlResult:
    """Crawl the chosen sources (all when None) and record each run's outcome on its Source.

    `full` pages through every source to its end; a complete full crawl also records reviews removed from the site.
    """
    wanted = source_names or [s.name for _, s in config.sources()]
    with sessions.begin() as session:
        sources = sync_config(session, config)
        whole = settle_earlier_runs(session, [sources[name] for name in wanted], datetime.now(UTC))
        runs = []
        for name in wanted:
            _, source_config = config.source(name)
            run = CrawlRun(source=sources[name], outcome="running")
            session.add(run)
            runs.append((source_config, sources[name], run))
        session.flush()
        plan = _plan(config, runs, full)
        plan["parent_pid"] = os.getpid()  # the child dies with us (spiders/runner.die_with_parent)
        for entry, (source_config, _, _) in zip(plan["sources"], runs, strict=True):
            if source_config.download_delay is not None:  # the source's own pacing (spiders/politeness.py)
                entry["download_delay"] = source_config.download_delay
            if source_config.concurrency is not None:
                entry["concurrency"] = source_config.concurrency
        logs = private_dir(config.data_dir / "logs")
        plan["log_file"] = str(logs / "crawl.log")
        plan["progress"] = progress is not None
        for entry in plan["sources"]:
            if entry["source_id"] in whole:
                entry["incremental"] = False
        run_ids = [run.id for _, _, run in runs]
        incremental = {source["run_id"]: source["incremental"] for source in plan["sources"]}
        first = {source["run_id"]: source["baseline"] for source in plan["sources"]}
    if not run_ids:
        return CrawlResult()

    with tempfile.TemporaryDirectory(prefix="repwatch-plan-") as tmp:
        plan_path = Path(tmp) / "plan.json"
        plan_path.write_text(json.dumps(plan), encoding="utf-8")
        child_error = _run_child(plan_path, config.crawl.timeout.total_seconds(), logs / "crawl.log", progress)

    result = CrawlResult()
    now = datetime.now(UTC)
    with sessions.begin() as session:
        for run in session.scalars(select(CrawlRun).where(CrawlRun.id.in_(run_ids)).order_by(CrawlRun.id)):
            if run.outcome == "running":  # the child died before recording it
                run.outcome, run.error, run.finished_at = "failed", child_error or "crawl ended without a result", now
            _update_health(run.source, run, now)
            removed = 0
            if not incremental[run.id] and covered_whole_source(run):
                removed = mark_removed(session, run.source_id, not_seen_since=run.started_at, now=now)
            result.sources.append(
                SourceOutcome(run.source.name, run.outcome, run.error, run.requests, run.pages, run.items, run.new,
                              run.changed, removed, baseline=first[run.id],
                              # what the crawl met on the way; field-level data problems (a review without stars
                              # on a site that allows that) stay in `sources health`
                              notes=run_notes(run.stats, data_problems=False))
            )
        prune_runs(session, [source.id for _, source, _ in runs], older_than=now - config.crawl.keep_runs,
                   keep=run_ids)
    return result


def prune_runs(session: Session, source_ids: list[int], *, older_than: datetime, keep: list[int]) -> int:
    """Delete these sources' crawl records started before `older_than`, except `keep` (this crawl's) and any still
    running. Each crawl leaves ~750 bytes of stats: 1,000 sources crawled every 6 hours would add ~1.3 GB a year."""
    deleted: int = session.execute(  # type: ignore[attr-defined]  # a DELETE's CursorResult has rowcount
        delete(CrawlRun).where(CrawlRun.source_id.in_(source_ids), CrawlRun.started_at < older_than,
                               CrawlRun.id.not_in(keep), CrawlRun.outcome != "running")
    ).rowcount
    return deleted


def settle_earlier_runs(session: Session, sources: list[Source], now: datetime) -> set[int]:
    """Finish the books of crawls of these sources that were killed (SIGKILL, OOM, power loss) part-way.

    The caller holds these sources' locks, so no live process owns their runs. A run still "running" becomes a
    failed run ("interrupted") and counts toward the source's health like any failed crawl: a source whose crawls
    never finish is not being watched, and N in a row is worth telling the operator. A run the child recorded but
    whose health update never happened (the command died in between) is applied now.

    Returns the ids of the sources to page through to the end this time, whatever their state: after a killed run
    (it may have stored page 1 and never reached page 5) or a run that failed to fetch some pages, stopping at
    known reviews would skip the pages never stored, for good.
    """
    ids = [source.id for source in sources]
    if not ids:
        return set()
    by_id = {source.id: source for source in sources}
    whole: set[int] = set()
    latest = session.execute(
        select(CrawlRun.source_id, func.max(CrawlRun.id))
        .where(CrawlRun.source_id.in_(ids))
        .group_by(CrawlRun.source_id)
    ).all()
    for source_id, run_id in latest:
        run = session.get(CrawlRun, run_id)
        if run is None or run.outcome == "running":
            continue
        if not _health_applied(by_id[source_id], run):
            _update_health(by_id[source_id], run, now)
        if (run.stats or {}).get("repwatch/fetch_errors"):
            whole.add(source_id)
    stale = session.scalars(
        select(CrawlRun).where(CrawlRun.source_id.in_(ids), CrawlRun.outcome == "running").order_by(CrawlRun.id)
    )
    for run in stale:
        run.outcome, run.finished_at = "failed", now
        run.error = (f"interrupted: the crawl started {run.started_at:%Y-%m-%d %H:%M:%S} UTC ended without recording "
                     "a result (the process was killed or the machine stopped)")
        _update_health(by_id[run.source_id], run, now)
        whole.add(run.source_id)
    return whole


def _health_applied(source: Source, run: CrawlRun) -> bool:
    """Has this finished run already been counted on its source? (An ok run sets last_success_at to its end.)"""
    if run.outcome == "ok":
        if source.last_success_at is None:
            return False
        return run.finished_at is None or source.last_success_at >= run.finished_at
    return source.state not in ("ok", "new")  # a failure counted leaves the source failing, blocked, broken or empty


# What a run's stats mean for the operator, for runs that ended ok but met something worth knowing.
RUN_NOTES = {
    "repwatch/fetch_errors": "{n} page(s) failed to load",
    "repwatch/oversize_pages": "{n} page(s) over the download limit",
    "repwatch/decompression_bombs": "{n} compression bomb(s) refused",
    "repwatch/truncated_html": "{n} page(s) nested too deep, cut short",
    "repwatch/encoding_errors": "{n} page(s) with invalid text encoding",
    "repwatch/redirect_loops": "{n} redirect loop(s)",
    "repwatch/redirect_cap_reached": "{n} redirect chain(s) too long",
    "repwatch/pagination_cycle": "paging went in a circle",
    "repwatch/page_cap_reached": "stopped at max_pages",
    "repwatch/large_pages": "{n} very large page(s)",
    "repwatch/refused_scheme": "{n} link(s) to a non-http(s) URL refused",
    "repwatch/refused_offsite": "{n} request(s) off the source's site refused",
    "repwatch/refused_private": "{n} request(s) to a private address refused",
    "repwatch/microdata_skipped": "{n} page(s) with microdata too deeply nested or too large to read",
    "repwatch/store_errors": "{n} batch(es) of reviews could not be stored",
    "repwatch/unstorable_reviews": "{n} review(s) the database refused, the others stored",
}


def run_notes(stats: dict[str, Any] | None, *, data_problems: bool = True) -> list[str]:
    """The noteworthy counts of a run, as short phrases ("2 pages failed to load"), data problems included."""
    stats = stats or {}
    notes = [_counted(text, stats[key]) for key, text in RUN_NOTES.items() if stats.get(key)]
    problems = sum(v for k, v in stats.items() if k.startswith("repwatch/problem/") and isinstance(v, int))
    if problems and data_problems:
        notes.append(_counted("{n} review(s) with unreadable fields", problems))
    return notes


def _counted(text: str, n: Any) -> str:
    """A RUN_NOTES phrase for `n`: "1 page failed to load", "2 pages failed to load"."""
    return _PLURAL_MARK.sub(lambda mark: "" if n == 1 else mark[1], text.format(n=n))


_PLURAL_MARK = re.compile(r"(?<!http)\((e?s)\)")  # "page(s)", "batch(es)"; not "http(s)"


def covered_whole_source(run: CrawlRun) -> bool:
    """Did this run see every review the source shows? Only then is a review it missed really gone."""
    stats = run.stats or {}
    return run.outcome == "ok" and not any(
        stats.get(key) for key in ("repwatch/page_cap_reached", "repwatch/stopped_at_known", "repwatch/fetch_errors",
                                   # pages cut short or paging that went in circles: reviews may be unseen, not gone
                                   "repwatch/truncated_html", "repwatch/pagination_cycle", "repwatch/oversize_pages")
    )


def _update_health(source: Source, run: CrawlRun, now: datetime) -> None:
    if run.outcome == "ok":
        source.state = "ok"
        source.last_success_at = run.finished_at or now
        source.consecutive_failures = 0
        source.last_error = None
        if source.baseline_at is None:
            source.baseline_at = now
        return
    source.consecutive_failures += 1
    source.last_error = run.error
    source.state = run.outcome if run.outcome in ("blocked", "broken", "empty") else "failing"
