"""Running the `repwatch` command in tests: in this process (run_cli) unless a real process is the point, and as a
child process (run_process, start_process) for signals, kills, resource limits, the daemon and the worker."""
from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from rich.console import Console
from typer.testing import CliRunner

from monitor import cli

COMMAND = [sys.executable, "-m", "monitor"]  # `repwatch` as a child process: this interpreter, this tree's package
# Every run sees a terminal this wide, so that no Rich table a test reads wraps a line; `env` may override it.
TERMINAL = {"COLUMNS": "200"}


@dataclass(frozen=True)
class Result:
    """How a `repwatch` command ended."""

    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
            input: str | bytes | None = None) -> Result:
    """`repwatch ARGS` in this process, through `monitor.cli.main` (its one-line error handling included).

    `env` is laid over os.environ and `cwd` entered for the call only, both restored however it ends. Verbs that
    start children still do (a crawl's Scrapy process); only the interpreter start of the command itself is saved.
    """
    with _freed_at_exit(), _working_directory(cwd), \
            CliRunner().isolation(input=input, env={**TERMINAL, **(env or {})}) as (out, err, _):
        excepthook = sys.excepthook  # Typer installs its own on every call
        try:
            with _plain_consoles(), _last_resort_logging():
                cli.main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
        else:
            raise AssertionError("monitor.cli.main returned instead of exiting with a code")
        finally:
            sys.excepthook = excepthook
        sys.stdout.flush()
        sys.stderr.flush()
        return Result(code, out.getvalue().decode(), err.getvalue().decode())


@contextmanager
def _freed_at_exit() -> Iterator[None]:
    """Free what the command left for its process's exit (a crawl's source locks, its database connections), as
    the exit would: held in a reference cycle, a lock would outlive the command and stand in the next one's way.
    Only what the command made is collected (what existed before is frozen): milliseconds, where a collection of
    the whole test process takes a tenth of a second or more."""
    gc.freeze()
    try:
        yield
    finally:
        gc.collect()
        gc.unfreeze()


@contextmanager
def _working_directory(cwd: Path | None) -> Iterator[None]:
    before = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)


@contextmanager
def _plain_consoles() -> Iterator[None]:
    """The CLI's Rich consoles chose colours, animation and a width when monitor.cli was imported, from the terminal
    of that moment (under `pytest -s`: escape codes; in an xdist worker: COLUMNS=80). Here, as through a pipe, no
    colour, and the width of the call's own COLUMNS."""
    with ExitStack() as patches:
        for console in (value for value in vars(cli).values() if isinstance(value, Console)):
            patches.enter_context(mock.patch.object(console, "_color_system", None))
            patches.enter_context(mock.patch.object(console, "is_interactive", False))
            patches.enter_context(mock.patch.object(console, "_width", None))
        yield


@contextmanager
def _last_resort_logging() -> Iterator[None]:
    """Warnings the command logs go to its stderr, as in a process that configures no logging (Python's last-resort
    handler): pytest's own handlers on the root logger would otherwise take them out of the result."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def run_process(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, input: str | None = None,
                timeout: float = 120, preexec_fn: Callable[[], None] | None = None,
                launcher: Sequence[str] = ()) -> Result:
    """`repwatch ARGS` as a child process, to its end. `launcher` is a command put in front that runs it (a meter of
    its peak memory); `preexec_fn` runs in the child before it starts (a resource limit)."""
    done = subprocess.run([*launcher, *COMMAND, *args], input=input, capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **TERMINAL, **(env or {})}, timeout=timeout, preexec_fn=preexec_fn)
    return Result(done.returncode, done.stdout, done.stderr)


def start_process(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                  timeout: float = 90) -> RunningProcess:
    """`repwatch ARGS` started as a child process and left running; its stderr is followed line by line."""
    return RunningProcess(list(args), env=env, cwd=cwd, timeout=timeout)


class RunningProcess:
    """A `repwatch` command running as a child process; its stderr read line by line as it comes, for `wait_for`.
    `timeout` bounds each wait, never a pause."""

    def __init__(self, args: list[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 timeout: float = 90):
        self.proc = subprocess.Popen([*COMMAND, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, cwd=cwd)
        self.timeout = timeout
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<EOF>")
            self._changed.notify_all()

    def wait_for(self, text: str, count: int = 1) -> list[str]:
        """The first `count` stderr lines containing `text`, waiting for them to be written (or the process to end)."""
        def found() -> list[str] | None:
            hits = [line for line in self.lines if text in line]
            return hits if len(hits) >= count or "<EOF>" in self.lines else None

        with self._changed:
            hits = self._changed.wait_for(found, timeout=self.timeout) or []
        assert len(hits) >= count, f"{len(hits)} of {count} lines with {text!r} in:\n" + "\n".join(self.lines)
        return hits

    def terminate(self) -> None:
        """SIGTERM, then SIGKILL if it has not ended within the timeout."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(self.timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
