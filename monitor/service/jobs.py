"""Jobs as the daemon and the workers run them: what each scheduled job is, and a `repwatch` child process per job."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from models.files import private_dir, private_opener
from monitor.config import Config
from monitor.schedules import cron_trigger, describe_rule, format_duration, rule_trigger

DIGEST = "digest"
DELIVER = "deliver"
DELIVER_TIMEOUT = timedelta(minutes=10)
# The crawl verb stops its Scrapy child at crawl.timeout, then scores and delivers: give it that long on top.
AFTER_CRAWL_TIMEOUT = timedelta(minutes=10)
DIGEST_TIMEOUT = timedelta(minutes=15)
STOP_WAIT = 10.0  # seconds between asking a child to stop (SIGINT) and killing its process group
JOBS_LOG_LIMIT = 10 * 1024 * 1024  # data/logs/jobs.log is rotated to jobs.log.1 past this, so months stay bounded
_jobs_log_lock = threading.Lock()


@dataclass(frozen=True)
class JobSpec:
    id: str  # "crawl:<source>" or "digest"
    kind: str  # crawl | digest
    args: tuple[str, ...]  # the `repwatch` verb it runs
    trigger: BaseTrigger = field(compare=False)
    schedule: str  # "every 6h" / "cron 0 8 * * mon (UTC)": also tells a changed schedule on reload
    timeout: float  # seconds
    quiet: bool = False  # a frequent housekeeping job: its starts and clean exits are not logged

    @property
    def label(self) -> str:
        return self.id.replace(":", " ", 1)


def job_specs(config: Config) -> list[JobSpec]:
    """Every scheduled job of a config: one crawl per source, and the digest when a digest: section exists."""
    settings = config.schedule
    zone = ZoneInfo(settings.timezone)
    crawl_timeout = (config.crawl.timeout + AFTER_CRAWL_TIMEOUT).total_seconds()
    specs = []
    for _, source in config.sources():
        rule = source.schedule or settings.crawl
        specs.append(JobSpec(f"crawl:{source.name}", "crawl", ("crawl", "--source", source.name),
                             rule_trigger(rule, zone), f"{describe_rule(rule)} ({settings.timezone})", crawl_timeout))
    if config.digest is not None:
        specs.append(JobSpec(DIGEST, "digest", ("digest", "--send"), cron_trigger(settings.digest, zone),
                             f"cron {settings.digest} ({settings.timezone})", DIGEST_TIMEOUT.total_seconds()))
    # Between crawls: alerts waiting to retry, reminders that fall due, source health. Logged only when it fails.
    every = IntervalTrigger(seconds=settings.deliver.total_seconds(), start_date=datetime(2000, 1, 1, tzinfo=UTC))
    specs.append(JobSpec(DELIVER, "deliver", ("deliver",), every, f"every {format_duration(settings.deliver)}",
                         DELIVER_TIMEOUT.total_seconds(), quiet=True))
    return specs


# --- children -----------------------------------------------------------------------------------------


@dataclass
class Exited:
    job_id: str
    code: int
    stderr: str = ""
    timed_out: bool = False
    stopped: bool = False


class Child(Protocol):
    pid: int

    def stop(self) -> None: ...


class Launcher(Protocol):
    def launch(self, spec: JobSpec, config_path: Path, report: Callable[[Exited], None]) -> Child: ...


class BatchLauncher(Launcher, Protocol):
    """A launcher that can run several crawls as one job; `report` is then called once per crawl's job id."""

    def launch_batch(self, specs: list[JobSpec], config_path: Path, report: Callable[[Exited], None]) -> Child: ...


class ProcessChild:
    """A `repwatch <verb>` child in its own session; a watcher thread reports its exit."""

    def __init__(self, spec: JobSpec, config_path: Path, report: Callable[[Exited], None], jobs_log: Path, *,
                 die_with_parent: bool = False):
        self.spec = spec
        self.stopping = False
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", *spec.args, "--config", str(config_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            errors="replace", start_new_session=True,  # Ctrl-C at the terminal reaches the daemon only
            preexec_fn=_death_signal(os.getpid()) if die_with_parent else None,
        )
        self.pid = self.proc.pid
        self._report = report
        self._jobs_log = jobs_log
        threading.Thread(target=self._watch, name=f"watch {spec.id}", daemon=True).start()

    def _watch(self) -> None:
        timed_out = False
        try:
            out, err = self.proc.communicate(timeout=self.spec.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.stop()
            out, err = self.proc.communicate()
        try:
            with _jobs_log_lock:
                if self._jobs_log.exists() and self._jobs_log.stat().st_size > JOBS_LOG_LIMIT:
                    os.replace(self._jobs_log, self._jobs_log.with_name(self._jobs_log.name + ".1"))
                with open(self._jobs_log, "a", encoding="utf-8", opener=private_opener) as log:
                    log.write(f"=== {datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z {self.spec.label} (pid {self.pid}) "
                              f"exit {self.proc.returncode}\n{out}{err}")
        except OSError:
            pass  # a full disk must not hide the exit: the log line on stderr still says what happened
        self._report(Exited(self.spec.id, self.proc.returncode, err, timed_out, self.stopping and not timed_out))

    def stop(self) -> None:
        """SIGINT first (the crawl verb then stops its Scrapy child), the whole group killed if that is not enough."""
        self.stopping = True
        self._signal(signal.SIGINT)
        timer = threading.Timer(STOP_WAIT, self._signal, (signal.SIGKILL,))
        timer.daemon = True
        timer.start()

    def _signal(self, signum: int) -> None:
        if self.proc.returncode is None:
            try:
                os.killpg(self.pid, signum)
            except ProcessLookupError:
                pass


def _death_signal(parent: int) -> Callable[[], None] | None:
    """Linux: the child is SIGKILLed when the thread that started it dies, so a `repwatch worker` killed mid-job
    leaves no crawl running on without it (its queue hands the job to another worker). None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: the child only calls it

    def preexec() -> None:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)  # the parent died before the prctl: nobody would read our exit

    return preexec


class ProcessLauncher:
    def __init__(self, jobs_log: Path):
        self.jobs_log = jobs_log

    def launch(self, spec: JobSpec, config_path: Path, report: Callable[[Exited], None]) -> Child:
        private_dir(self.jobs_log.parent)
        return ProcessChild(spec, config_path, report, self.jobs_log)


@dataclass
class QueueStatus:
    where: str  # the Redis URL, password masked
    waiting: int | None  # jobs queued that no worker has taken yet (None: the queue could not be asked)
    running: int | None  # jobs taken by a worker and not yet acknowledged (running, or a dead worker's)
    workers: list[str] = field(default_factory=list)  # workers that answered a ping, by name
    error: str | None = None
