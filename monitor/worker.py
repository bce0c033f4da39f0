"""Many machines: Celery on Redis carries `repwatch run`'s jobs to `repwatch worker`s, each job the same CLI child."""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery, signals
from celery.backends.redis import RedisBackend
from celery.states import READY_STATES, SUCCESS

from monitor.config import ConfigError, load_config
from monitor.scheduler import DELIVER, DIGEST, Exited, JobSpec, ProcessChild, job_specs

CRAWL_TASK = "repwatch.crawl"
DELIVER_TASK = "repwatch.deliver"
DIGEST_TASK = "repwatch.digest"
RESULTS_KEPT = 24 * 3600  # seconds: long enough for the daemon to read them, and to spot a redelivered finished job
STDERR_KEPT = 4000  # characters of a job's stderr carried back to the daemon (it logs the `repwatch:` lines)
POLL_INTERVAL = 1.0  # seconds between the daemon's looks at the results of the jobs it queued

log = logging.getLogger("repwatch.worker")


def redis_where(url: str) -> str:
    """redis://:secret@host:6379/0 → redis://host:6379/0, for log lines."""
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url, mask="***")


class PolledResults(RedisBackend):
    """Results as the daemon reads them: polled in bulk (MGET), never a pub/sub subscription per queued job, which
    Celery retries for 20 s on every send while Redis is away and then gives up on for the life of the process."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        return None


def celery_app(settings: Any, *, polled: bool = False) -> Celery:
    """The Celery app for a config's `queue:` section; the daemon (polled results) and every worker build it."""
    app = Celery("repwatch", set_as_current=False)
    visibility = int(settings.visibility_timeout.total_seconds())
    prefix = f"{settings.name}:"  # every key this installation writes, so several can share one Redis
    app.conf.update(
        broker_url=settings.url,
        result_backend=f"{__name__}:PolledResults+{settings.url}" if polled else settings.url,
        broker_transport_options={
            "visibility_timeout": visibility,
            "global_keyprefix": prefix,
            # The sweep that hands a dead worker's jobs to the living runs every unacked_restore_interval ×
            # unacked_restore_throttle seconds (10 × 10 by default): keep it a tenth of the timeout, at most 10 s.
            "unacked_restore_interval": max(1, min(10, visibility // 10)),
            "unacked_restore_throttle": 1,
            # A worker killed in the middle of a sweep leaves the sweep's mutex behind: it must not outlast the
            # timeout by much, or the jobs of that very worker wait that much longer (default 300 s).
            "unacked_mutex_expire": max(5, min(300, visibility // 2)),
        },
        result_backend_transport_options={"global_keyprefix": prefix},
        task_default_queue=settings.name,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=RESULTS_KEPT,
        # A job is acknowledged when its child process has exited, so a worker that dies mid-job leaves it in
        # Redis to be handed out again; one job fetched per free slot, so nothing waits behind a long crawl.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A job that finished but whose worker died before acknowledging it is not run twice.
        worker_deduplicate_successful_tasks=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=True,
        worker_log_format="%(asctime)s repwatch worker: %(message)s",
        worker_task_log_format="%(asctime)s repwatch worker: %(message)s",
    )
    return app


def task_for(spec: JobSpec) -> tuple[str, list[str]]:
    """The task and its arguments for a scheduled job (names only: a worker never runs a command it was sent)."""
    if spec.kind == "crawl":
        return CRAWL_TASK, [spec.id.split(":", 1)[1]]
    if spec.id == DELIVER:
        return DELIVER_TASK, []
    if spec.id == DIGEST:
        return DIGEST_TASK, []
    raise ValueError(f"no task for job {spec.id!r}")


# --- the worker side --------------------------------------------------------------------------------------


class Jobs:
    """What this worker runs: the job specs of its own config, re-read when asked for a source it does not know."""

    def __init__(self, config_path: Path, config: Any):
        self.config_path = config_path
        self.config = config
        self.hostname = socket.gethostname()
        self._specs = {spec.id: spec for spec in job_specs(config)}
        self._lock = threading.Lock()

    def spec(self, job_id: str) -> JobSpec | None:
        with self._lock:
            if job_id not in self._specs:
                try:  # a source added since this worker started: `repwatch run` was reloaded first
                    self.config = load_config(self.config_path)
                    self._specs = {spec.id: spec for spec in job_specs(self.config)}
                except ConfigError:
                    pass  # the child says what is wrong with the file
            return self._specs.get(job_id)

    def run(self, job_id: str) -> dict[str, Any]:
        """Run one job as its `repwatch` verb in a child process, exactly as `repwatch run` does on one machine."""
        spec = self.spec(job_id)
        if spec is None:
            what = f"no source named {job_id.split(':', 1)[1]!r}" if job_id.startswith("crawl:") else f"no {job_id} job"
            message = f"repwatch: {self.hostname}: {what} in {self.config_path}; give every machine the same config\n"
            log.error(message.strip())
            return {"code": 1, "stderr": message, "timed_out": False, "worker": self.hostname}
        done = threading.Event()
        outcome: list[Exited] = []

        def report(exited: Exited) -> None:
            outcome.append(exited)
            done.set()

        jobs_log = self.config.data_dir / "logs" / "jobs.log"
        jobs_log.parent.mkdir(parents=True, exist_ok=True)
        # die_with_parent: a worker killed mid-job takes its child with it, and the job goes to another worker
        # whole, instead of this crawl going on unwatched while its redelivered twin waits for the lock.
        child = ProcessChild(spec, self.config_path, report, jobs_log, die_with_parent=True)
        log.info("%s: started (pid %s)", spec.label, child.pid)
        done.wait()  # the child's own timeout (the job's) ends it; the watcher always reports
        exited = outcome[0]
        state = "timed out" if exited.timed_out else f"exit {exited.code}"
        log.info("%s: %s", spec.label, state)
        return {"code": exited.code, "stderr": exited.stderr[-STDERR_KEPT:], "timed_out": exited.timed_out,
                "worker": self.hostname}


def register_tasks(app: Celery, jobs: Jobs) -> None:
    options = {"acks_late": True, "reject_on_worker_lost": True}

    @app.task(name=CRAWL_TASK, **options)
    def crawl(source: str) -> dict[str, Any]:
        return jobs.run(f"crawl:{source}")

    @app.task(name=DELIVER_TASK, **options)
    def deliver() -> dict[str, Any]:
        return jobs.run(DELIVER)

    @app.task(name=DIGEST_TASK, **options)
    def digest() -> dict[str, Any]:
        return jobs.run(DIGEST)


def serve(config_path: Path, config: Any, *, concurrency: int | None = None) -> int:
    """`repwatch worker`: consume the queue until SIGTERM (warm: running jobs finish); returns the exit status."""
    settings = config.queue
    app = celery_app(settings)
    register_tasks(app, Jobs(config_path, config))
    slots = concurrency or settings.concurrency

    def ready(**_: Any) -> None:
        log.info("ready: %d job(s) at once from queue %s on %s (pid %d)", slots, settings.name,
                 redis_where(settings.url), os.getpid())

    signals.worker_ready.connect(ready, weak=False)
    worker = app.Worker(
        hostname=f"repwatch-{os.getpid()}@{socket.gethostname()}",
        # Threads, not forked pool processes: each job is a child process of its own already, and a thread
        # pool keeps a job's child tied to the worker (PR_SET_PDEATHSIG) for the whole life of the worker.
        pool="threads",
        concurrency=slots,
        queues=[settings.name],
        loglevel="INFO",
        quiet=True,
        without_mingle=True,
        without_gossip=True,
        without_heartbeat=True,
    )
    worker.start()
    return worker.exitcode or 0


# --- the daemon side --------------------------------------------------------------------------------------


@dataclass
class QueuedJob:
    """A job handed to the queue, seen by the daemon as a child that ends when its result arrives."""

    spec: JobSpec
    task_id: str
    report: Callable[[Exited], None]
    deadline: float  # monotonic: no result by then means the job was lost (or waits behind very many others)
    waited: float = 0.0  # seconds from queueing to the deadline
    pid: int = 0
    note: str = ""
    stopping: bool = False
    reported: bool = False
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def finish(self, exited: Exited) -> None:
        """Report the job's end once: its result and the daemon's stop may come together."""
        with self._guard:
            if self.reported:
                return
            self.reported = True
        self.report(exited)

    def stop(self) -> None:
        """The daemon is stopping: stop waiting for the result; the job itself still runs on a worker."""
        self.stopping = True
        self.finish(Exited(self.spec.id, 0, stopped=True))


class QueueLauncher:
    """`repwatch run` with a queue: each due job becomes a task; its result comes back as the child's exit."""

    def __init__(self, settings: Any, *, poll_interval: float = POLL_INTERVAL):
        self.settings = settings
        self.app = celery_app(settings, polled=True)
        self.poll_interval = poll_interval
        self._pending: dict[str, QueuedJob] = {}
        self._lock = threading.Lock()
        self._work = threading.Event()
        self._thread: threading.Thread | None = None

    def launch(self, spec: JobSpec, config_path: Path, report: Callable[[Exited], None]) -> QueuedJob:
        name, args = task_for(spec)
        try:
            result = self.app.send_task(name, args=args)
        except Exception as exc:  # kombu's connection errors are not OSErrors; the daemon logs this one line
            raise OSError(f"cannot queue it on {redis_where(self.settings.url)}: {exc}") from None
        # Its own time limit once a worker has it, plus the time a dead worker's job waits to be handed out again.
        wait = spec.timeout + self.settings.visibility_timeout.total_seconds()
        job = QueuedJob(spec, result.id, report, time.monotonic() + wait, wait, note=f"queued (task {result.id})")
        with self._lock:
            self._pending[result.id] = job
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="queue results", daemon=True)
                self._thread.start()
        self._work.set()
        return job

    def _watch(self) -> None:
        backend = self.app.backend
        while True:
            self._work.wait()
            with self._lock:
                pending = {task_id: job for task_id, job in self._pending.items() if not job.reported}
                self._pending = dict(pending)
                if not pending:
                    self._work.clear()
                    continue
            try:
                self._look(backend, pending)
            except Exception:  # noqa: BLE001 - Redis away for a moment, or a result it cannot read: look again
                log.debug("reading the queue's results failed", exc_info=True)
            time.sleep(self.poll_interval)  # a polling period: results are plain Redis keys

    def _look(self, backend: Any, pending: dict[str, QueuedJob]) -> None:
        ids = list(pending)
        values: list[Any] = []
        for start in range(0, len(ids), 1000):
            values += backend.mget([backend.get_key_for_task(task_id) for task_id in ids[start:start + 1000]])
        now = time.monotonic()
        for task_id, value in zip(ids, values, strict=True):
            job = pending[task_id]
            meta = backend.decode_result(value) if value else None
            if meta is not None and meta.get("status") in READY_STATES:
                job.finish(exited_from(job.spec.id, meta))
            elif now >= job.deadline:
                job.finish(Exited(job.spec.id, 1, (
                    f"repwatch: no result from the workers after {job.waited:.0f} s: still queued behind other "
                    "jobs, or lost with Redis; it may still run\n")))


def exited_from(job_id: str, meta: dict[str, Any]) -> Exited:
    """A task's stored result as the exit of the job's child."""
    result = meta.get("result")
    if meta.get("status") == SUCCESS and isinstance(result, dict):
        return Exited(job_id, int(result.get("code", 1)), str(result.get("stderr", "")),
                      timed_out=bool(result.get("timed_out")))
    detail = result.get("exc_message") if isinstance(result, dict) else result
    return Exited(job_id, 1, f"repwatch: the worker could not run it ({meta.get('status')}): {detail}\n")
