"""`repwatch status`: is the daemon running, when each source is crawled next, what waits in the outbox."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import connect, migrate, session_factory
from models.tables import CrawlRun, Delivery, Review, Source
from monitor.config import Config
from monitor.schedules import fire_after
from monitor.service.crawl import run_notes, sync_config
from monitor.service.followups import unanswered
from monitor.service.jobs import QueueStatus, job_specs
from monitor.service.locks import DAEMON_LOCK, lock_path, read_holder


@dataclass
class DaemonStatus:
    running: bool
    pid: int | None
    since: datetime | None
    note: str  # one line for people


@dataclass
class SourceStatus:
    name: str
    state: str
    failures: int
    last_crawl: datetime | None
    last_outcome: str | None
    last_success: datetime | None
    next_crawl: datetime | None  # by the schedule in config; None when it cannot be computed
    schedule: str


@dataclass
class DestinationStatus:
    destination: str
    pending: int
    due_now: int
    oldest_pending: datetime | None
    next_retry: datetime | None
    failed: int
    last_error: str | None


@dataclass
class Status:
    now: datetime
    daemon: DaemonStatus
    sources: list[SourceStatus] = field(default_factory=list)
    outbox: list[DestinationStatus] = field(default_factory=list)
    unscored: int = 0
    unanswered: int = 0
    queue: QueueStatus | None = None  # with a `queue:` section

    def as_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        as_dict: dict[str, Any] = plain(asdict(self))
        return as_dict


def daemon_status(data_dir: Any) -> DaemonStatus:
    """From the daemon's lock note: read, never locked (a status check must not stop a daemon from starting)."""
    path = lock_path(data_dir, DAEMON_LOCK)
    if not path.exists():
        return DaemonStatus(False, None, None, "not running (never started with this data_dir)")
    holder = read_holder(path)
    if holder.pid is None:
        return DaemonStatus(False, None, None, "not running")
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return DaemonStatus(False, holder.pid, holder.started, f"not running (pid {holder.pid} is gone: killed?)")
    except PermissionError:
        pass  # alive, owned by another user
    return DaemonStatus(True, holder.pid, holder.started, f"running, {holder.describe()}")


def queue_status(config: Config) -> QueueStatus | None:
    """The queue's jobs and workers when the config has a `queue:` section (None without one)."""
    if config.queue is None:
        return None
    try:
        from monitor.service.queue import (
            queue_status as ask,  # Celery: the queue extra, only for those who use it
        )
    except ImportError as exc:
        return QueueStatus(config.queue.name, None, None,
                           error=f"cannot look at the queue without Celery ({exc}): install the queue extra, see docs/operations.md#installing")
    return ask(config.queue)


def gather_status(config: Config, sessions: sessionmaker[Session], *, now: datetime | None = None) -> Status:
    now = now or datetime.now(UTC)
    status = Status(now=now, daemon=daemon_status(config.data_dir), queue=queue_status(config))
    specs = {spec.id: spec for spec in job_specs(config)}
    with sessions() as session:
        latest = (
            select(CrawlRun.source_id, func.max(CrawlRun.id).label("run_id")).group_by(CrawlRun.source_id).subquery()
        )
        runs = {
            run.source_id: run
            for run in session.scalars(select(CrawlRun).join(latest, CrawlRun.id == latest.c.run_id))
        }
        sources = {s.name: s for s in session.scalars(select(Source))}
        for _, source_config in config.sources():
            row = sources.get(source_config.name)
            run = runs.get(row.id) if row is not None else None
            spec = specs.get(f"crawl:{source_config.name}")
            next_crawl = None
            if spec is not None:
                # a crawl dated in the future (a clock that was ahead) ran at the latest now: counted from then,
                # its next crawl would seem as far away as the clock was ahead
                next_crawl = fire_after(spec.trigger, min(run.started_at, now)) if run is not None else now
                next_crawl = max(next_crawl, now) if next_crawl is not None else None
            status.sources.append(SourceStatus(
                name=source_config.name,
                state=row.state if row is not None else "new",
                failures=row.consecutive_failures if row is not None else 0,
                last_crawl=run.started_at if run is not None else None,
                last_outcome=run.outcome if run is not None else None,
                last_success=row.last_success_at if row is not None else None,
                next_crawl=next_crawl,
                schedule=spec.schedule if spec is not None else "",
            ))
        rows = session.execute(
            select(Delivery.destination, Delivery.status, func.count(Delivery.id), func.min(Delivery.created_at),
                   func.min(Delivery.next_attempt_at),
                   func.sum(case((Delivery.next_attempt_at <= now, 1), else_=0)))
            .where(Delivery.status.in_(("pending", "failed")))
            .group_by(Delivery.destination, Delivery.status)
        ).all()
        by_destination: dict[str, DestinationStatus] = {}
        for destination, state, count, oldest, next_attempt, due in rows:
            entry = by_destination.setdefault(destination, DestinationStatus(destination, 0, 0, None, None, 0, None))
            if state == "pending":
                entry.pending, entry.due_now, entry.oldest_pending = count, int(due or 0), oldest
                entry.next_retry = next_attempt if next_attempt and next_attempt > now else None
            else:
                entry.failed = count
        for destination, entry in by_destination.items():
            entry.last_error = session.scalar(
                select(Delivery.last_error)
                .where(Delivery.destination == destination, Delivery.last_error.is_not(None),
                       Delivery.status.in_(("pending", "failed")))
                .order_by(Delivery.id.desc()).limit(1)
            )
        status.outbox = sorted(by_destination.values(), key=lambda d: d.destination)
        status.unscored = session.scalar(select(func.count(Review.id)).where(Review.scored_at.is_(None))) or 0
        status.unanswered = session.scalar(select(func.count(Review.id)).where(unanswered(now))) or 0
    return status


@dataclass(frozen=True)
class SourceHealth:
    """One configured source as `repwatch sources health` shows it."""

    name: str
    kind: str
    state: str
    last_success_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    notes: list[str]  # the last run's data-quality notes (pages failed, cut short, …)


def source_health(config: Config, sessions: sessionmaker[Session]) -> list[SourceHealth]:
    """Every configured source's state, by name (config synced first, so a new source shows as `new`)."""
    with sessions.begin() as session:
        sync_config(session, config)
        rows = session.scalars(select(Source).order_by(Source.name)).all()
        latest = select(func.max(CrawlRun.id)).group_by(CrawlRun.source_id)
        stats = {run.source_id: run.stats for run in session.scalars(select(CrawlRun).where(CrawlRun.id.in_(latest)))}
        return [SourceHealth(s.name, s.kind, s.state, s.last_success_at, s.consecutive_failures, s.last_error,
                             run_notes(stats.get(s.id))) for s in rows]


def last_crawls(config: Config) -> dict[str, datetime]:
    """When each source's latest crawl started, whoever ran it (cron, an operator, this daemon). The latest is the
    newest row, not the latest date: a crawl dated a year ahead by a wrong clock is not the last one for a year."""
    engine = connect(config.database_url())
    try:
        migrate(engine)
        with session_factory(engine)() as session:
            newest = select(func.max(CrawlRun.id)).group_by(CrawlRun.source_id)
            rows = session.execute(
                select(Source.name, CrawlRun.started_at).join(CrawlRun, CrawlRun.source_id == Source.id)
                .where(CrawlRun.id.in_(newest))
            ).all()
    finally:
        engine.dispose()
    return {name: started for name, started in rows if started is not None}
