"""Many machines: Celery on Redis carries `repwatch run`'s jobs to `repwatch worker`s, each job the same CLI child."""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from celery.backends.redis import RedisBackend
from celery.states import READY_STATES, SUCCESS

from models.vocab import mask_secrets
from monitor.service.jobs import DELIVER, DIGEST, Exited, JobSpec, QueueStatus
from monitor.service.locks import EXIT_LOCKED

CRAWL_TASK = "repwatch.crawl"
CRAWL_BATCH_TASK = "repwatch.crawl_batch"  # several sources, one `repwatch crawl --source A --source B …` child
DELIVER_TASK = "repwatch.deliver"
DIGEST_TASK = "repwatch.digest"
RESULTS_KEPT = 24 * 3600  # seconds: long enough for the daemon to read them, and to spot a redelivered finished job
STDERR_KEPT = 4000  # characters of a job's stderr carried back to the daemon (it logs the `repwatch:` lines)
SOURCE_STDERR_KEPT = 1000  # of a batch: characters carried back per source (its own lines, then the batch's)
POLL_INTERVAL = 1.0  # seconds between the daemon's looks at the results of the jobs it queued

log = logging.getLogger("repwatch.worker")



def redis_where(url: str) -> str:
    """redis://:secret@host:6379/0 → redis://:***@host:6379/0, for log lines."""
    return mask_secrets(url)


class PolledResults(RedisBackend):  # type: ignore[misc]  # Celery ships no type hints
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
    if spec.id == DIGEST:  # the week it is for, when the daemon pinned it (a retry sends the same week)
        return DIGEST_TASK, [spec.args[spec.args.index("--week") + 1]] if "--week" in spec.args else []
    raise ValueError(f"no task for job {spec.id!r}")


def batch_task_for(specs: list[JobSpec]) -> tuple[str, list[Any]]:
    """The task for several crawls run as one child: their source names, in order."""
    if not specs or any(spec.kind != "crawl" for spec in specs):
        raise ValueError(f"only crawls go in a batch, not {[spec.id for spec in specs]!r}")
    if len(specs) == 1:
        return task_for(specs[0])
    return CRAWL_BATCH_TASK, [[spec.id.split(":", 1)[1] for spec in specs]]


# What `repwatch crawl` writes on stderr about one source (monitor/cli.py): `repwatch: source NAME: skipped, …`
# for a source another crawl holds, `repwatch: source NAME OUTCOME: ERROR` for one that did not end ok. Source
# names are letters, digits and `_.-` (monitor/config.py), so the name ends at the first space or colon.
SOURCE_LINE = re.compile(r"^repwatch: source ([A-Za-z0-9][A-Za-z0-9_.-]*)[: ]")
SKIPPED_LINE = ": skipped, another crawl "


def _kept(lines: Iterable[str], limit: int) -> str:
    text = "".join(f"{line}\n" for line in lines)
    return text if len(text) <= limit else text[:limit - 2] + "…\n"


def split_by_source(names: list[str], exited: Exited) -> dict[str, dict[str, Any]]:
    """One batch child's exit as each source's own: what its job would have said had it run alone.

    A source with a line of its own gets that line: skipped (another crawl holds its lock) is exit 75 for it
    alone, a failed crawl exit 1. A source without one ended ok when the child exited 0, or 1 for other sources'
    failures only; otherwise it shares the child's exit with the lines about no source in particular (alerts
    not sent, a config problem) or the end of the output (a crash). A timeout is every source's.
    """
    own: dict[str, list[str]] = {name: [] for name in names}
    shared: list[str] = []
    for line in exited.stderr.splitlines():
        match = SOURCE_LINE.match(line)
        if match and match[1] in own:
            own[match[1]].append(line)
        elif line.startswith("repwatch: "):
            shared.append(line)
    tail = exited.stderr[-SOURCE_STDERR_KEPT:]
    # Exit 1 with nothing said but sources' own failures: those sources failed, the rest of the batch did not.
    failures_only = exited.code == 1 and not shared and any(
        SKIPPED_LINE not in line for lines in own.values() for line in lines)
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        lines = own[name]
        if exited.timed_out:
            code, stderr = exited.code, _kept(lines + shared, SOURCE_STDERR_KEPT) or tail
        elif any(SKIPPED_LINE in line for line in lines):
            code, stderr = EXIT_LOCKED, _kept(lines, SOURCE_STDERR_KEPT)
        elif lines:
            code = exited.code if exited.code not in (0, EXIT_LOCKED) else 1
            stderr = _kept(lines + shared, SOURCE_STDERR_KEPT)
        elif exited.code == 0 or failures_only:
            code, stderr = 0, _kept(shared, SOURCE_STDERR_KEPT)
        else:
            code, stderr = exited.code, _kept(shared, SOURCE_STDERR_KEPT) or tail
        results[name] = {"code": code, "stderr": stderr, "timed_out": exited.timed_out}
    return results


def batch_spec(specs: list[JobSpec]) -> JobSpec:
    """One child for several crawl jobs of this worker's own config: `repwatch crawl --source A --source B …`."""
    names = [spec.id.split(":", 1)[1] for spec in specs]
    args = ("crawl", *(arg for spec in specs for arg in spec.args[1:]))  # each spec's own `--source NAME`
    return JobSpec(f"crawl:{','.join(names)}", "crawl", args, specs[0].trigger, specs[0].schedule,
                   max(spec.timeout for spec in specs))


# --- the daemon side --------------------------------------------------------------------------------------


@dataclass
class QueuedJob:
    """A job handed to the queue, seen by the daemon as a child that ends when its result arrives; a batch of
    crawls is one job whose result ends each crawl's job with its own exit."""

    specs: tuple[JobSpec, ...]
    task_id: str
    report: Callable[[Exited], None]
    deadline: float  # monotonic: no result by then means the job was lost (or waits behind very many others)
    waited: float = 0.0  # seconds from queueing to the deadline
    pid: int = 0
    note: str = ""
    stopping: bool = False
    reported: bool = False
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def spec(self) -> JobSpec:
        return self.specs[0]

    def finish(self, exits: list[Exited]) -> None:
        """Report the job's end once (each crawl's in a batch): its result and the daemon's stop may come together."""
        with self._guard:
            if self.reported:
                return
            self.reported = True
        for exited in exits:
            self.report(exited)

    def finish_all(self, exited: Exited) -> None:
        """The same end for every job in it."""
        self.finish([replace(exited, job_id=spec.id) for spec in self.specs])

    def stop(self) -> None:
        """The daemon is stopping: stop waiting for the result; the job itself still runs on a worker."""
        self.stopping = True
        self.finish_all(Exited(self.spec.id, 0, stopped=True))


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
        return self._queue([spec], *task_for(spec), report, "")

    def launch_batch(self, specs: list[JobSpec], config_path: Path, report: Callable[[Exited], None]) -> QueuedJob:
        """Several crawls as one task; `report` hears each crawl's own exit when the batch's result comes back."""
        if len(specs) == 1:
            return self.launch(specs[0], config_path, report)
        return self._queue(specs, *batch_task_for(specs), report, f", one of {len(specs)} sources")

    def _queue(self, specs: list[JobSpec], name: str, args: list[Any], report: Callable[[Exited], None],
               what: str) -> QueuedJob:
        try:
            result = self.app.send_task(name, args=args)
        except Exception as exc:  # kombu's connection errors are not OSErrors; the daemon logs this one line
            raise OSError(f"cannot queue it on {redis_where(self.settings.url)}: {exc}") from None
        # Its own time limit once a worker has it, plus the time a dead worker's job waits to be handed out again.
        wait = max(spec.timeout for spec in specs) + self.settings.visibility_timeout.total_seconds()
        job = QueuedJob(tuple(specs), result.id, report, time.monotonic() + wait, wait,
                        note=f"queued (task {result.id}{what})")
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
                job.finish(exits_from([spec.id for spec in job.specs], meta))
            elif now >= job.deadline:
                job.finish_all(Exited(job.spec.id, 1, (
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


def exits_from(job_ids: list[str], meta: dict[str, Any]) -> list[Exited]:
    """A task's stored result as the exit of each job in it: a batch's result says each source's own
    (`sources`); without it (one job, a worker that failed, one that does not know batches) all share one."""
    whole = exited_from(job_ids[0], meta)
    result = meta.get("result")
    own = result.get("sources") if meta.get("status") == SUCCESS and isinstance(result, dict) else None
    exits = []
    for job_id in job_ids:
        mine = own.get(job_id.split(":", 1)[1]) if isinstance(own, dict) and ":" in job_id else None
        exits.append(exited_from(job_id, {"status": SUCCESS, "result": mine}) if isinstance(mine, dict)
                     else replace(whole, job_id=job_id))
    return exits


# --- what `repwatch status` shows of the queue ----------------------------------------------------------------


# kombu's Redis transport keeps a queue's jobs in one list per priority step (its default steps), each job taken
# but not acknowledged in the `unacked` hash; every key under the queue's `name:` prefix (celery_app).
PRIORITY_STEPS = (0, 3, 6, 9)
PRIORITY_SEPARATOR = "\x06\x16"


def queue_status(settings: Any, *, ping_timeout: float = 1.0) -> QueueStatus:
    """Jobs waiting and running on this installation's queue, and the workers that answer within `ping_timeout`."""
    import redis

    where = redis_where(settings.url)
    prefix = f"{settings.name}:"
    keys = [prefix + settings.name + (f"{PRIORITY_SEPARATOR}{step}" if step else "") for step in PRIORITY_STEPS]
    client = redis.Redis.from_url(settings.url, socket_connect_timeout=5, socket_timeout=5)
    try:
        waiting = sum(client.llen(key) for key in keys)
        running = client.hlen(prefix + "unacked")
        replies = celery_app(settings, polled=True).control.ping(timeout=ping_timeout) or []
    except Exception as exc:  # redis-py's and kombu's connection errors share no base class with OSError
        problem = first_line(exc)
        problem = mask_secrets(problem, urlsplit(settings.url).password)  # a message quoting the URL must not show it
        return QueueStatus(where, None, None, error=f"cannot reach {where}: {problem}")
    finally:
        client.close()
    return QueueStatus(where, waiting, running, sorted(name for reply in replies for name in reply))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
