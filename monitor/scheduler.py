"""`repwatch run`: config schedules → `repwatch crawl --source X`, `digest --send` and `deliver` child processes."""
from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml
from apscheduler.triggers.interval import IntervalTrigger

from alerts.digest import IsoWeek
from models.files import private_dir, private_opener
from models.vocab import batched
from monitor.config import Config, ConfigError, load_config_and_text
from monitor.schedules import fire_after, format_duration
from monitor.service.errors import describe_error
from monitor.service.jobs import (
    DIGEST,
    Child,
    Exited,
    JobSpec,
    Launcher,
    ProcessLauncher,
    job_specs,
)
from monitor.service.locks import DAEMON_LOCK, EXIT_LOCKED, Lock, acquire
from monitor.service.status import last_crawls
from monitor.web.server import WebServer

MAX_SLEEP = 60.0  # wake at least this often, so a wall-clock jump (suspend, NTP) is noticed within a minute
STATE_FILE = "scheduler-state.json"
# A failed digest is tried again after 5 minutes, then 10, 20, 40, then hourly, for up to a day after its time.
RETRY_FIRST = timedelta(minutes=5)
RETRY_MAX = timedelta(hours=1)
RETRY_WINDOW = timedelta(days=1)
LISTENER_RESTART = 10.0  # seconds before a Slack listener that ended is started again


# --- the core: what starts when (no I/O; time comes from a Clock) ------------------------------------


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class JobState:
    spec: JobSpec
    last_run: datetime | None
    fire: datetime | None = None  # the scheduled time it is waiting for (before jitter)
    due: datetime | None = None  # when it may start: fire + jitter, or now for a catch-up
    running_since: datetime | None = None
    retired: bool = False  # removed from config while running: forgotten when it ends
    future_run: datetime | None = None  # a last run dated in the future (a clock that was ahead), counted as now
    attempt: int = 0  # of the run going on or last ended: 1 its scheduled run, 2 and up its retries
    first_started: datetime | None = None  # when the scheduled run began: retries end RETRY_WINDOW after it
    retry_at: datetime | None = None  # a failed run's next try, before the job's next scheduled time
    args: tuple[str, ...] | None = None  # what its attempts run, when the daemon pinned them (the digest's week)


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = [f"{what} {', '.join(ids)}" for what, ids in
                 (("added", self.added), ("removed", self.removed), ("changed", self.changed)) if ids]
        return "; ".join(parts) or "no job changed"


@dataclass
class Skip:
    spec: JobSpec
    running_since: datetime


class Schedule:
    """Which jobs start when: triggers, last runs (catch-up once), jitter, coalescing and the crawl cap."""

    def __init__(self, clock: Clock, *, jitter: timedelta, max_concurrent: int, rng: random.Random | None = None):
        self.clock = clock
        self.jitter = jitter
        self.max_concurrent = max_concurrent
        self.rng = rng or random.Random()
        self.jobs: dict[str, JobState] = {}

    def plan(self, specs: Iterable[JobSpec], stored_last_runs: Mapping[str, datetime | None]) -> Changes:
        """(Re)schedule: unchanged jobs keep their next time; new and changed ones are computed from their last run."""
        now = self.clock.now()
        changes = Changes()
        wanted = {spec.id: spec for spec in specs}
        for job_id, state in list(self.jobs.items()):
            if job_id in wanted or state.retired:
                continue
            changes.removed.append(job_id)
            if state.running_since is None:
                del self.jobs[job_id]
            else:
                state.retired = True
        for job_id, spec in wanted.items():
            old = self.jobs.get(job_id)
            if old is not None and not old.retired and old.spec.schedule == spec.schedule:
                old.spec = spec
                continue
            last_run = (old.last_run if old is not None else None) or stored_last_runs.get(job_id)
            state = JobState(spec, last_run)
            if last_run is not None and last_run > now:
                # Never trust a run dated in the future: counted from it, the next run would wait as long as the
                # clock was ahead (a year). It ran at the latest now.
                state.future_run, state.last_run = last_run, now
                last_run = now
            if old is not None:
                state.running_since = old.running_since
            (changes.changed if old is not None and not old.retired else changes.added).append(job_id)
            self.jobs[job_id] = state
            if last_run is None:
                if spec.kind == "crawl":
                    state.fire = state.due = now  # never crawled: crawl now
                else:  # never sent: wait for its time rather than mailing everyone the moment the daemon starts
                    self._set_next(state, fire_after(spec.trigger, now))
                continue
            missed = fire_after(spec.trigger, last_run)
            if missed is not None and missed <= now:
                state.fire = state.due = now  # times passed while nobody ran it: once, now (not once per time)
            else:
                self._set_next(state, missed)
        return changes

    def _set_next(self, state: JobState, fire: datetime | None) -> None:
        state.fire = fire
        if fire is None:
            state.due = None
            return
        spread = self.jitter.total_seconds() if state.spec.kind == "crawl" else 0.0
        state.due = fire + timedelta(seconds=self.rng.uniform(0, spread)) if spread else fire

    def _advance(self, state: JobState, now: datetime) -> None:
        """Past the fire it just consumed; fires missed meanwhile are coalesced into it, and the times stay on grid."""
        trigger, fire = state.spec.trigger, state.fire or now
        following = fire_after(trigger, fire)
        if following is not None and following <= now:
            if isinstance(trigger, IntervalTrigger):  # the first of fire + k·interval after now
                following = fire + trigger.interval * ((now - fire) // trigger.interval + 1)
            else:
                following = fire_after(trigger, now)
        self._set_next(state, following)

    def running_crawls(self) -> int:
        return sum(1 for s in self.jobs.values() if s.running_since is not None and s.spec.kind == "crawl")

    def distrust_future_runs(self) -> list[JobState]:
        """The clock went back past a run this daemon started (it was ahead, and was corrected): that run happened
        at the latest now, and the job's next time is counted from now, not from the run's false date. The jobs
        rescheduled so."""
        now = self.clock.now()
        moved = [s for s in self.jobs.values() if s.last_run is not None and s.last_run > now and not s.retired]
        for state in moved:
            state.future_run, state.last_run = state.last_run, now
            state.first_started, state.retry_at = now, None
            self._set_next(state, fire_after(state.spec.trigger, now))
        return moved

    def start_due(self) -> tuple[list[JobSpec], list[Skip]]:
        """The jobs to start now (marked running), and the fires skipped because that job was still running; then
        the retries that are due."""
        self.distrust_future_runs()
        now = self.clock.now()
        started: list[JobSpec] = []
        skipped: list[Skip] = []
        due = sorted((s for s in self.jobs.values() if not s.retired and s.due is not None and s.due <= now),
                     key=lambda s: (s.due, s.spec.id))
        for state in due:
            if state.running_since is not None:  # max_instances=1
                skipped.append(Skip(state.spec, state.running_since))
                self._advance(state, now)
                continue
            if state.spec.kind == "crawl" and self.running_crawls() >= self.max_concurrent:
                continue  # stays due; a slot frees when a crawl ends
            state.running_since = state.last_run = state.first_started = now
            state.attempt, state.retry_at, state.args = 1, None, None
            self._advance(state, now)
            started.append(state.spec)
        for state in sorted(self.jobs.values(), key=lambda s: s.spec.id):
            if (state.retry_at is not None and state.retry_at <= now and state.running_since is None
                    and not state.retired):
                state.running_since = state.last_run = now
                state.attempt, state.retry_at = state.attempt + 1, None
                started.append(state.spec)
        return started, skipped

    def retry(self, job_id: str) -> datetime | None:
        """After a failed run of this job: when to try again (RETRY_FIRST, doubling up to RETRY_MAX), or None when
        that would be more than RETRY_WINDOW after its scheduled run began, or not before its next scheduled time."""
        state = self.jobs.get(job_id)
        if state is None or state.retired or state.first_started is None:
            return None
        at = self.clock.now() + min(RETRY_FIRST * 2 ** min(state.attempt - 1, 16), RETRY_MAX)
        if at > state.first_started + RETRY_WINDOW or (state.due is not None and at >= state.due):
            return None
        state.retry_at = at
        return at

    def start_early(self, limit: int) -> list[JobSpec]:
        """Crawls whose time has come but whose jitter has not yet passed, started now to fill a batch (at most
        `limit`, within the crawl cap). A batch shares one start-up: waiting out each crawl's own jitter would send
        nearly every batch with one source in it. Never before a crawl's scheduled time."""
        now = self.clock.now()
        waiting = sorted((s for s in self.jobs.values()
                          if s.spec.kind == "crawl" and not s.retired and s.running_since is None
                          and s.fire is not None and s.fire <= now and s.due is not None and s.due > now),
                         key=lambda s: (s.due, s.spec.id))
        started: list[JobSpec] = []
        for state in waiting[:max(0, limit)]:
            if self.running_crawls() >= self.max_concurrent:
                break
            state.running_since = state.last_run = now
            self._advance(state, now)
            started.append(state.spec)
        return started

    def finished(self, job_id: str) -> None:
        state = self.jobs.get(job_id)
        if state is None:
            return
        state.running_since = None
        if state.retired:
            del self.jobs[job_id]

    def next_wakeup(self) -> datetime | None:
        """The next time something may start on its own (jobs waiting for a crawl slot wait for an exit instead)."""
        now = self.clock.now()
        times = [s.due for s in self.jobs.values() if not s.retired and s.due is not None and s.due > now]
        times += [s.retry_at for s in self.jobs.values() if not s.retired and s.retry_at is not None and s.retry_at > now]
        return min(times, default=None)

    def running(self) -> list[JobSpec]:
        return [s.spec for s in self.jobs.values() if s.running_since is not None]


def default_launcher(config: Config) -> Launcher:
    """Child processes on this machine, or with a queue: section, tasks for `repwatch worker` (monitor/worker.py)."""
    if config.queue is None:
        return ProcessLauncher(config.data_dir / "logs" / "jobs.log")
    from monitor.service.queue import (
        QueueLauncher,  # Celery: the queue extra, imported only by those who use it
    )

    return QueueLauncher(config.queue)


QUEUED_AT_ONCE = 100_000  # with a queue every due crawl is queued: the workers' slots are the real cap


def crawl_cap(config: Config, queue: Any) -> int:
    return config.schedule.max_concurrent_crawls if queue is None else QUEUED_AT_ONCE


# --- the daemon ----------------------------------------------------------------------------------------


def read_config(path: Path) -> tuple[Any, str]:
    """Validate a config file; also returns the text it was read from (what the children will get)."""
    return load_config_and_text(path)


def stderr_line(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class Daemon:
    """Runs jobs when the Schedule says, one child process each; SIGTERM/SIGINT stop it, SIGHUP reloads config."""

    def __init__(
        self,
        config_path: Path,
        *,
        grace: timedelta = timedelta(seconds=60),
        clock: Clock | None = None,
        launcher: Launcher | None = None,
        rng: random.Random | None = None,
        log: Callable[[str], None] = stderr_line,
    ):
        self.config_path = Path(config_path)
        self.config, text = read_config(self.config_path)  # ConfigError: the CLI prints it and exits 1
        self.grace = grace
        self.clock = clock or SystemClock()
        self._log = log
        self.job_queue = self.config.queue  # where jobs go, until a restart (None: child processes here)
        self.launcher = launcher or default_launcher(self.config)
        settings = self.config.schedule
        self.schedule = Schedule(self.clock, jitter=settings.jitter,
                                 max_concurrent=crawl_cap(self.config, self.job_queue), rng=rng)
        self.children: dict[str, Child] = {}
        self.inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()  # put() is safe in signal handlers
        self.stopping = False
        self._lock: Lock | None = None
        self._text = text
        self.listener: subprocess.Popen[bytes] | None = None  # `repwatch slack-listen`, with slack_actions.app_token
        self.listener_restart_at: float | None = None

    # -- the Slack listener: a child for as long as the daemon runs, started again (after LISTENER_RESTART) if it ends

    def start_listener(self) -> None:
        actions = self.config.slack_actions
        self.listener_restart_at = None
        if self.stopping or actions is None or actions.app_token is None or self.listener is not None:
            return
        log_path = self.config.data_dir / "logs" / "slack-listen.log"
        private_dir(log_path.parent)
        with open(log_path, "a", encoding="utf-8", opener=private_opener) as log_file:
            self.listener = subprocess.Popen(
                [sys.executable, "-m", "monitor", "slack-listen", "--config", str(self.snapshot_path)],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True)
        listener = self.listener
        threading.Thread(target=lambda: self.inbox.put(("listener", listener.wait())), daemon=True).start()
        self.log(f"slack listener: started (pid {listener.pid}, log {log_path})")

    def listener_exited(self, code: int) -> None:
        self.listener = None
        if self.stopping:
            return
        self.listener_restart_at = time.monotonic() + LISTENER_RESTART
        self.log(f"slack listener: exited ({code}); starting it again in {LISTENER_RESTART:g} s "
                 "(data/logs/slack-listen.log says why)")

    def stop_listener(self) -> None:
        if self.listener is not None and self.listener.poll() is None:
            self.listener.terminate()

    # -- events

    def log(self, message: str) -> None:
        self._log(f"{self.clock.now():%Y-%m-%d %H:%M:%S}Z repwatch run: {message}")

    def begin(self) -> None:
        """Plan every job from what the database (and the state file) says ran last; start what is due."""
        self._write_snapshot(self.config, self._text)
        self.schedule.plan(job_specs(self.config), self.stored_last_runs())
        for state in sorted(self.schedule.jobs.values(), key=lambda s: s.spec.id):
            self.log(f"{state.spec.label}: {state.spec.schedule}, next {self._when(state)}")
        if self.config.digest is None:
            self.log(f"digest: not scheduled ({self.config_path.name} has no digest: section)")
        self.start_listener()
        self.start_due()

    def _when(self, state: JobState) -> str:
        if state.due is None:
            return "never"
        future = (f" (its last run is dated {state.future_run:%Y-%m-%d %H:%M}Z, in the future: a clock that was "
                  "ahead; counted from now)") if state.future_run else ""
        if state.due <= self.clock.now():
            return "now (" + ("never run" if state.last_run is None else f"missed a run since {state.last_run:%Y-%m-%d %H:%M}Z") + ")"
        return f"{state.due:%Y-%m-%d %H:%M:%S}Z{future}"

    @property
    def sources_per_task(self) -> int:
        """How many due crawls go out as one job: with a queue, its `sources_per_task`; one at a time otherwise."""
        if self.job_queue is None or not hasattr(self.launcher, "launch_batch"):
            return 1
        return self.job_queue.sources_per_task

    def start_due(self) -> None:
        if self.stopping:
            return
        for state in self.schedule.distrust_future_runs():
            self.log(f"{state.spec.label}: the clock went back; next {self._when(state)}")
        started, skipped = self.schedule.start_due()
        for skip in skipped:
            self.log(f"{skip.spec.label}: skipped, still running since {skip.running_since:%Y-%m-%d %H:%M:%S}Z")
        for group in self._groups(started):
            self._launch(group)

    def _groups(self, started: list[JobSpec]) -> list[list[JobSpec]]:
        """The jobs to launch together: due crawls in batches of sources_per_task (the last one filled with crawls
        whose time has come while their jitter runs), every other job alone."""
        size = self.sources_per_task
        if size <= 1:
            return [[spec] for spec in started]
        crawls = batched([spec for spec in started if spec.kind == "crawl"], size)
        if crawls and len(crawls[-1]) < size:
            crawls[-1] += self.schedule.start_early(size - len(crawls[-1]))
        return crawls + [[spec] for spec in started if spec.kind != "crawl"]

    def _launch(self, group: list[JobSpec]) -> None:
        """Start one job, or one batch of crawls whose exit comes back to each crawl's job on its own."""
        report = lambda exited: self.inbox.put(("exited", exited))  # noqa: E731
        try:
            if len(group) == 1:
                child = self.launcher.launch(self._pinned(group[0]), self.snapshot_path, report)
            else:
                child = self.launcher.launch_batch(group, self.snapshot_path, report)  # type: ignore[attr-defined]
        except OSError as exc:
            for spec in group:
                self.log(f"{spec.label}: could not start: {exc}")
                self.schedule.finished(spec.id)
            return
        for spec in group:
            self.children[spec.id] = child
            if not spec.quiet:
                self.log(f"{spec.label}: {getattr(child, 'note', None) or f'started (pid {child.pid})'}")

    def _pinned(self, spec: JobSpec) -> JobSpec:
        """The digest sends the week that was last complete when its scheduled run began, its retries too (a retry
        after midnight on Sunday would otherwise send the week that just ended instead)."""
        state = self.schedule.jobs.get(spec.id)
        if spec.kind != "digest" or state is None:
            return spec
        if state.args is None:
            state.args = (*spec.args, "--week", IsoWeek.last_complete(state.first_started or self.clock.now()).label)
        return replace(spec, args=state.args)

    def child_exited(self, exited: Exited) -> None:
        self.children.pop(exited.job_id, None)
        state = self.schedule.jobs.get(exited.job_id)
        label = state.spec.label if state else exited.job_id.replace(":", " ", 1)
        problems = [line.removeprefix("repwatch: ") for line in exited.stderr.splitlines() if line.startswith("repwatch: ")]
        detail = f": {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "") if problems else ""
        if exited.timed_out:
            self.log(f"{label}: timed out after {state.spec.timeout if state else 0:.0f} s, stopped{self._retry(state)}")
        elif exited.stopped:
            self.log(f"{label}: stopped (exit {exited.code})")
        elif exited.code == 0:
            if not (state is not None and state.spec.quiet):
                self.log(f"{label}: finished ok")
            if exited.job_id == DIGEST and state is not None and state.running_since is not None:
                try:
                    self.record_digest(state.first_started or state.running_since, state.args)
                except OSError as exc:
                    self.log(f"digest: cannot record it in {self.state_path}: {exc.strerror}; after a restart it is "
                             "tried again (nobody who got it gets it twice)")
        elif exited.code == EXIT_LOCKED:
            self.log(f"{label}: skipped, another crawl holds its lock")
        else:
            self.log(f"{label}: failed (exit {exited.code}){detail}{self._retry(state)}")
        self.schedule.finished(exited.job_id)
        self.start_due()

    def _retry(self, state: JobState | None) -> str:
        """A digest that did not go out is tried again within the day (each business's goes out once: `repwatch
        digest --send` skips the ones sent); what the log line adds about it. Other jobs wait for their time."""
        if state is None or state.spec.id != DIGEST:
            return ""
        at = self.schedule.retry(state.spec.id)
        if at is not None:
            return f"; trying again at {at:%H:%M:%S}Z (try {state.attempt + 1})"
        return f"; no more tries before its next time, {self._when(state)}"

    def reload(self) -> bool:
        """SIGHUP: a valid config replaces the old one and reschedules; a bad one is reported and ignored."""
        try:
            config, text = read_config(self.config_path)
            specs = job_specs(config)
        except ConfigError as exc:
            more = f" (+{len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
            self.log(f"reload: bad config, keeping the old one: {exc.problems[0]}{more}")
            return False
        try:
            last_runs = self.stored_last_runs()
        except Exception as exc:  # noqa: BLE001 - the database being away must not cost the reload
            self.log(f"reload: cannot read the last runs ({describe_error(exc)}); new sources are crawled at once")
            last_runs = {}
        self._write_snapshot(config, text)
        if config.queue != self.job_queue:
            self.log("reload: the queue: section changed; that takes effect when `repwatch run` restarts")
        self.config = config
        self.schedule.jitter = config.schedule.jitter
        self.schedule.max_concurrent = crawl_cap(config, self.job_queue)
        changes = self.schedule.plan(specs, last_runs)
        self.log(f"reload: ok, {len(specs)} jobs ({changes.describe()})")
        self.start_due()
        return True

    def stop(self) -> None:
        """SIGTERM/SIGINT: nothing new starts; running jobs get the grace period."""
        if self.stopping:
            self.terminate()  # asked twice: do not wait any longer
            return
        self.stopping = True
        self.stop_listener()
        running = [spec.label for spec in self.schedule.running()]
        if running:
            self.log(f"stopping: waiting up to {format_duration(self.grace)} for {', '.join(running)}")
        else:
            self.log("stopping")

    def terminate(self) -> None:
        stopped: set[int] = set()
        for child in list(self.children.values()):
            if id(child) in stopped or getattr(child, "stopping", False):
                continue
            stopped.add(id(child))  # a batch of crawls is one child: stopped once, every crawl in it named
            labels = [job_id.replace(":", " ", 1) for job_id, other in self.children.items() if other is child]
            self.log(f"{', '.join(labels)}: still running after the grace period, stopping it")
            child.stop()

    # -- the loop

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT; exit status 0 after a clean stop. Raises LockHeld if another daemon runs."""
        self._lock = acquire(self.config.data_dir, DAEMON_LOCK)
        handlers = {signum: signal.signal(signum, self._on_signal) for signum in
                    (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            self.log(f"started (pid {os.getpid()}, config {self.config_path}, "
                     + (f"at most {self.config.schedule.max_concurrent_crawls} crawls at once)" if self.job_queue is None
                        else f"jobs queued as {self.job_queue.name} for `repwatch worker`)"))
            web = self.start_web()
            self.begin()
            deadline: float | None = None
            while not (self.stopping and not self.children):
                timeout = MAX_SLEEP
                if deadline is not None:
                    timeout = max(0.0, min(timeout, deadline - time.monotonic()))
                elif (wake := self.schedule.next_wakeup()) is not None:
                    timeout = max(0.0, min(timeout, (wake - self.clock.now()).total_seconds()))
                if self.listener_restart_at is not None:
                    timeout = max(0.0, min(timeout, self.listener_restart_at - time.monotonic()))
                try:
                    kind, payload = self.inbox.get(timeout=timeout)
                except queue.Empty:
                    kind, payload = "tick", None
                if kind == "signal" and payload != signal.SIGHUP:
                    self.stop()
                    if deadline is None:
                        deadline = time.monotonic() + self.grace.total_seconds()
                try:
                    if kind == "exited":
                        self.child_exited(payload)
                    elif kind == "listener":
                        self.listener_exited(payload)
                    elif kind == "signal" and payload == signal.SIGHUP:
                        self.reload()
                    if deadline is not None and time.monotonic() >= deadline:
                        self.terminate()
                    if self.listener_restart_at is not None and time.monotonic() >= self.listener_restart_at:
                        self.start_listener()
                    self.start_due()
                except Exception as exc:  # noqa: BLE001 - a daemon that runs for months says so and goes on
                    self.log(f"error: {describe_error(exc)}")
            if self.listener is not None:
                try:
                    self.listener.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.listener.kill()
            if web is not None:
                web.stop()
            self.log("stopped")
            return 0
        finally:
            self.stop_listener()
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            self._lock.release()

    def start_web(self) -> WebServer | None:
        """The team inbox in a thread of the daemon, when web.start_with_run says so (a port in use is said and the
        daemon goes on without it: the crawls matter more)."""
        if not self.config.web.start_with_run:
            return None
        try:
            server = WebServer(self.config).start()
        except OSError as exc:
            self.log(f"web: cannot listen on {self.config.web.host}:{self.config.web.port}: {exc.strerror or exc}; "
                     "the inbox is not served")
            return None
        self.log(f"web: the inbox is at {server.url}/")
        return server

    def _on_signal(self, signum: int, frame: object) -> None:
        self.inbox.put(("signal", signum))

    # -- what ran last: the database for crawls, a small file for the digest

    @property
    def snapshot_path(self) -> Path:
        return self.config.data_dir / "run" / "config.yaml"

    def _write_snapshot(self, config: Config, text: str) -> None:
        """The children read the config the daemon validated, not whatever the file says now (a bad edit waits
        for the next good reload). Relative data_dir is pinned, since the copy lives elsewhere."""
        raw = yaml.safe_load(text) or {}
        raw["data_dir"] = str(config.data_dir)
        path = config.data_dir / "run" / "config.yaml"
        private_dir(path.parent)
        temporary = path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8", opener=private_opener) as out:
            out.write(f"# written by `repwatch run` from {self.config_path}; edit that file, then send SIGHUP\n")
            yaml.safe_dump(raw, out, sort_keys=False, allow_unicode=True)
        os.replace(temporary, path)

    def stored_last_runs(self) -> dict[str, datetime | None]:
        runs: dict[str, datetime | None] = {f"crawl:{name}": at for name, at in last_crawls(self.config).items()}
        runs[DIGEST] = self._digest_state().get("last_run")
        return runs

    @property
    def state_path(self) -> Path:
        return self.config.data_dir / STATE_FILE

    def _digest_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            return {"last_run": datetime.fromisoformat(state[DIGEST]["last_run"]), "week": state[DIGEST]["week"]}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def record_digest(self, started: datetime, args: tuple[str, ...] | None = None) -> None:
        """The digest's run that went out: when it began, and the week it sent (pinned in `args`, or the week
        before `started`, as `digest --send` chooses)."""
        week = args[args.index("--week") + 1] if args and "--week" in args else IsoWeek.last_complete(started).label
        temporary = self.state_path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8", opener=private_opener) as file:
            file.write(json.dumps({DIGEST: {"last_run": started.isoformat(), "week": week}}))
        os.replace(temporary, self.state_path)

