"""`repwatch worker`: runs the jobs `repwatch run` queued on Redis, each as the same `repwatch` child process."""
from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from celery import Celery, signals

from alerts.digest import IsoWeek
from models.files import private_dir
from monitor.config import Config, ConfigError, load_config
from monitor.service.jobs import (
    DELIVER,
    DIGEST,
    Exited,
    JobSpec,
    ProcessChild,
    job_specs,
)
from monitor.service.queue import (
    CRAWL_BATCH_TASK,
    CRAWL_TASK,
    DELIVER_TASK,
    DIGEST_TASK,
    STDERR_KEPT,
    batch_spec,
    celery_app,
    redis_where,
    split_by_source,
)

log = logging.getLogger("repwatch.worker")


# --- the worker side --------------------------------------------------------------------------------------


class Jobs:
    """What this worker runs: the job specs of its own config, re-read when asked for a source it does not know."""

    def __init__(self, config_path: Path, config: Config):
        self.config_path = config_path
        self.config = config
        self.hostname = socket.gethostname()
        self._specs = {spec.id: spec for spec in job_specs(config)}
        self._lock = threading.Lock()

    def spec(self, job_id: str) -> JobSpec | None:
        return self.specs([job_id])[0]

    def specs(self, job_ids: list[str]) -> list[JobSpec | None]:
        """This worker's own specs for these job ids (None for one its config does not have)."""
        with self._lock:
            if any(job_id not in self._specs for job_id in job_ids):
                try:  # a source added since this worker started: `repwatch run` was reloaded first
                    self.config = load_config(self.config_path)
                    self._specs = {spec.id: spec for spec in job_specs(self.config)}
                except ConfigError:
                    pass  # the child says what is wrong with the file
            return [self._specs.get(job_id) for job_id in job_ids]

    def refuse(self, job_id: str) -> dict[str, Any]:
        """A job this worker's config does not have: never run, one line saying so."""
        what = f"no source named {job_id.split(':', 1)[1]!r}" if job_id.startswith("crawl:") else f"no {job_id} job"
        message = f"repwatch: {self.hostname}: {what} in {self.config_path}; give every machine the same config\n"
        log.error(message.strip())
        return {"code": 1, "stderr": message, "timed_out": False, "worker": self.hostname}

    def run(self, job_id: str, *, week: str | None = None) -> dict[str, Any]:
        """Run one job as its `repwatch` verb in a child process, exactly as `repwatch run` does on one machine
        (the digest for the `week` the daemon chose, `2026-W47`, when it names one)."""
        spec = self.spec(job_id)
        if spec is None:
            return self.refuse(job_id)
        if week is not None:
            try:
                spec = replace(spec, args=(*spec.args, "--week", IsoWeek.parse(str(week)).label))
            except ValueError as exc:
                return {"code": 1, "stderr": f"repwatch: {self.hostname}: {job_id}: {exc}\n", "timed_out": False,
                        "worker": self.hostname}
        exited = self._child(spec)
        return {"code": exited.code, "stderr": exited.stderr[-STDERR_KEPT:], "timed_out": exited.timed_out,
                "worker": self.hostname}

    def run_batch(self, names: list[str]) -> dict[str, Any]:
        """Crawl several sources in one `repwatch crawl --source A --source B …` child; the result carries each
        source's exit of its own (`sources`), for `repwatch run` to report on each source's job. A name this
        worker's config lacks is refused on its own; the others are crawled."""
        names = list(dict.fromkeys(names))
        specs = self.specs([f"crawl:{name}" for name in names])
        sources = {name: {k: v for k, v in self.refuse(f"crawl:{name}").items() if k != "worker"}
                   for name, spec in zip(names, specs, strict=True) if spec is None}
        known = [spec for spec in specs if spec is not None]
        if not known:
            return {"code": 1, "stderr": "".join(r["stderr"] for r in sources.values())[-STDERR_KEPT:],
                    "timed_out": False, "worker": self.hostname, "sources": sources}
        exited = self._child(batch_spec(known))
        sources.update(split_by_source([spec.id.split(":", 1)[1] for spec in known], exited))
        code = exited.code if exited.code != 0 or len(known) == len(names) else 1
        return {"code": code, "stderr": exited.stderr[-STDERR_KEPT:], "timed_out": exited.timed_out,
                "worker": self.hostname, "sources": {name: sources[name] for name in names}}

    def _child(self, spec: JobSpec) -> Exited:
        done = threading.Event()
        outcome: list[Exited] = []

        def report(exited: Exited) -> None:
            outcome.append(exited)
            done.set()

        jobs_log = self.config.data_dir / "logs" / "jobs.log"
        private_dir(jobs_log.parent)
        # die_with_parent: a worker killed mid-job takes its child with it, and the job goes to another worker
        # whole, instead of this crawl going on unwatched while its redelivered twin waits for the lock.
        child = ProcessChild(spec, self.config_path, report, jobs_log, die_with_parent=True)
        log.info("%s: started (pid %s)", spec.label, child.pid)
        done.wait()  # the child's own timeout (the job's) ends it; the watcher always reports
        exited = outcome[0]
        state = "timed out" if exited.timed_out else f"exit {exited.code}"
        log.info("%s: %s", spec.label, state)
        return exited


def register_tasks(app: Celery, jobs: Jobs) -> None:
    options = {"acks_late": True, "reject_on_worker_lost": True}

    @app.task(name=CRAWL_TASK, **options)
    def crawl(source: str) -> dict[str, Any]:
        return jobs.run(f"crawl:{source}")

    @app.task(name=CRAWL_BATCH_TASK, **options)
    def crawl_batch(sources: list[str]) -> dict[str, Any]:
        if not isinstance(sources, list) or not all(isinstance(name, str) for name in sources):
            return {"code": 1, "stderr": f"repwatch: {jobs.hostname}: a crawl batch is a list of source names\n",
                    "timed_out": False, "worker": jobs.hostname}
        return jobs.run_batch(sources)

    @app.task(name=DELIVER_TASK, **options)
    def deliver() -> dict[str, Any]:
        return jobs.run(DELIVER)

    @app.task(name=DIGEST_TASK, **options)
    def digest(week: str | None = None) -> dict[str, Any]:
        return jobs.run(DIGEST, week=week)


def serve(config_path: Path, config: Config, *, concurrency: int | None = None) -> int:
    """`repwatch worker`: consume the queue until SIGTERM (warm: running jobs finish); returns the exit status."""
    settings = config.queue
    if settings is None:
        raise ValueError("the worker needs a queue: section")  # `repwatch worker` says so before it gets here
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

