"""The pipeline as one call: locks → crawl (a Scrapy child) → score → follow-ups → deliver, for the CLI and the daemon."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from alerts.outbox import DeliveryReport
from models.db import connect, migrate, session_factory
from monitor.config import Config
from monitor.sentiment import Scorer
from monitor.service import alerting
from monitor.service.crawl import CrawlResult, Progress, run_crawl
from monitor.service.followups import (
    BaselineCount,
    FollowupReport,
    baseline_counts,
    queue_followups,
)
from monitor.service.locks import (
    OUTBOX_LOCK,
    DatabaseLocks,
    Lock,
    LockHeld,
    acquire,
    database_lock,
)
from monitor.service.scoring import score_pending, warm_scores

# A stage's progress for the person watching: the CLI shows a spinner with this text; the default shows nothing.
Stage = Callable[[str], AbstractContextManager[Any]]


def quiet_stage(_: str) -> AbstractContextManager[Any]:
    return nullcontext()


def open_sessions(config: Config) -> sessionmaker[Session]:
    """The configured database, migrated to the newest schema."""
    engine = connect(config.database_url())
    migrate(engine)
    return session_factory(engine)


def dispose(sessions: sessionmaker[Session]) -> None:
    """Close the database connections behind a session factory (a long-lived process opens many crawls)."""
    bind = sessions.kw.get("bind")
    if isinstance(bind, Engine):
        bind.dispose()


@dataclass
class CrawlReport:
    """What one `repwatch crawl` did: per-source outcomes, what was scored and queued, what was sent."""

    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, who holds its lock)
    all_locked: bool = False  # every source asked for was being crawled by another process: nothing was done
    result: CrawlResult = field(default_factory=CrawlResult)
    scored: int = 0
    queued: int = 0
    followups: FollowupReport = field(default_factory=FollowupReport)
    delivery: DeliveryReport | None = None  # None when alerts were not sent (--no-alerts)
    baselines: dict[str, BaselineCount] = field(default_factory=dict)  # sources whose first crawl this was

    @property
    def baseline_stored(self) -> int:
        return sum(count.stored for count in self.baselines.values())

    @property
    def baseline_unanswered(self) -> int:
        return sum(count.unanswered for count in self.baselines.values())

    @property
    def problems(self) -> list[str]:
        problems = [f"source {s.name} {s.outcome}: {s.error}" for s in self.result.failures]
        return problems + [f"alerts: {p}" for p in (self.delivery.problems if self.delivery else [])]

    @property
    def notes(self) -> list[str]:
        """What went wrong in sources whose run was still ok (a page that failed to load, paging cut short)."""
        return [f"source {s.name}: {'; '.join(s.notes)}" for s in self.result.sources if s.outcome == "ok" and s.notes]


def crawl(config: Config, source_names: list[str] | None = None, *, full: bool = False, send: bool = True,
          stage: Stage = quiet_stage, progress: Progress | None = None) -> CrawlReport:
    """Crawl the sources (all when None), store and score new reviews, queue follow-ups and send what is due.

    A source another crawl holds (a flock on this machine, an advisory lock on PostgreSQL for every machine) is
    skipped. The locks are released when the crawl returns; the OS frees them even after a SIGKILL.
    """
    wanted = list(dict.fromkeys(source_names or [s.name for _, s in config.sources()]))
    report = CrawlReport()
    with ExitStack() as held:  # every lock released when the crawl ends (and by the OS after a SIGKILL)
        shared = held.enter_context(DatabaseLocks(config.database_url()))
        locks: dict[str, Lock] = {}
        for name in wanted:
            try:
                locks[name] = held.enter_context(acquire(config.data_dir, name))
                shared.acquire(name)
            except LockHeld as exc:
                if name in locks:
                    locks.pop(name).release()
                report.skipped.append((name, exc.holder.describe()))
        if wanted and not locks:
            report.all_locked = True
            return report
        crawled = list(locks)
        sessions = open_sessions(config)
        held.callback(dispose, sessions)
        with stage(f"crawling {len(crawled)} sources…"):
            report.result = run_crawl(config, sessions, crawled, full=full, progress=progress)
        scorer = Scorer.from_config(config)
        with stage("reading new reviews…"):
            # The model's part of scoring, before the lock below: crawls on other cores and machines read theirs
            # at the same time (bench/RESULTS.md section 3). After the crawl, not during it: measured here, scoring
            # alongside the crawl child slowed the crawl by more than the scoring it hid (two cores, one SQLite
            # writer).
            warm_scores(sessions, scorer, crawled)
        # One process at a time scores and sends, or two crawls finishing together could send an alert twice.
        with acquire(config.data_dir, OUTBOX_LOCK, wait=True):
            shared.acquire(OUTBOX_LOCK, wait=True)  # and one machine at a time
            try:
                with stage("scoring new reviews…"):
                    # This crawl's sources only: another crawl's new reviews are being read by that crawl right
                    # now (a source's leftovers from a killed crawl wait for its next crawl, or `repwatch deliver`).
                    report.scored, report.queued = score_pending(sessions, config, scorer, source_names=crawled)
                    report.followups = queue_followups(sessions, config)
                    first = [s.name for s in report.result.sources if s.baseline and s.outcome == "ok"]
                    if first:
                        with sessions() as session:
                            report.baselines = baseline_counts(session, first, datetime.now(UTC))
                if send:
                    with stage("sending alerts…"):
                        report.delivery = alerting.deliver(sessions, config)
            finally:
                shared.release(OUTBOX_LOCK)
    return report


@dataclass
class DeliverReport:
    scored: int
    queued: int
    followups: FollowupReport
    delivery: DeliveryReport


def deliver(config: Config, sessions: sessionmaker[Session] | None = None) -> DeliverReport:
    """Without crawling: score what waits, queue reminders, updates, spikes and source health, send what is due."""
    sessions = sessions or open_sessions(config)
    # The same one-at-a-time as `crawl`, on every machine that shares the PostgreSQL database.
    with acquire(config.data_dir, OUTBOX_LOCK, wait=True), database_lock(config.database_url(), OUTBOX_LOCK):
        scored, queued = score_pending(sessions, config, Scorer.from_config(config))
        followups = queue_followups(sessions, config)
        delivery = alerting.deliver(sessions, config)
    return DeliverReport(scored, queued, followups, delivery)


def send_due(config: Config, sessions: sessionmaker[Session]) -> DeliveryReport:
    """Send what waits in the outbox, under the outbox lock every sender takes (a crawl, `deliver`, `handle`)."""
    with acquire(config.data_dir, OUTBOX_LOCK, wait=True), database_lock(config.database_url(), OUTBOX_LOCK):
        return alerting.deliver(sessions, config)
