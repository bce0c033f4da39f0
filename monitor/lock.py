"""Per-source crawl locks: flock on <data_dir>/locks/<name>.lock, released by the OS when the holder dies."""
from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from io import FileIO
from datetime import UTC, datetime
from pathlib import Path

EXIT_LOCKED = 75  # EX_TEMPFAIL: every requested source was being crawled by someone else; try again later

# Names of locks that are not sources; source names start with a letter or digit, so these never collide.
OUTBOX_LOCK = "_outbox"
DAEMON_LOCK = "_run"


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its holder wrote it (None while the holder has not written yet)."""

    pid: int | None
    started: datetime | None

    def describe(self) -> str:
        pid = str(self.pid) if self.pid is not None else "unknown"
        started = f"{self.started.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if self.started else "at an unknown time"
        return f"pid {pid}, started {started}"


class LockHeld(Exception):
    """Another process holds the lock."""

    def __init__(self, name: str, holder: Holder):
        self.name = name
        self.holder = holder
        super().__init__(f"{name}: held by {holder.describe()}")


class Lock:
    """A held lock; release() or process exit (even SIGKILL) frees it."""

    def __init__(self, name: str, path: Path, file: FileIO):
        self.name = name
        self.path = path
        self._file: FileIO | None = file

    def release(self) -> None:
        file = self._file
        if file is None:
            return
        self._file = None
        # Empty it first, so a later reader never shows a dead holder's pid for a new holder that has not written yet.
        os.ftruncate(file.fileno(), 0)
        file.close()  # closing the last descriptor drops the flock

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def lock_path(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / "locks" / f"{name}.lock"


def acquire(data_dir: Path, name: str, *, wait: bool = False) -> Lock:
    """Take the lock `name` under data_dir; raises LockHeld at once when another process has it (unless `wait`)."""
    path = lock_path(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Never O_TRUNC and never unlink: the file is only the flock's handle; its content is a note for the message.
    file = FileIO(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644), "r+")
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        file.close()
        raise LockHeld(name, read_holder(path)) from None
    except BaseException:
        file.close()
        raise
    note = json.dumps({"pid": os.getpid(), "started": datetime.now(UTC).isoformat()}).encode()
    os.ftruncate(file.fileno(), 0)
    os.pwrite(file.fileno(), note + b"\n", 0)
    return Lock(name, path, file)


def read_holder(path: Path) -> Holder:
    try:
        note = json.loads(path.read_text(encoding="utf-8") or "{}")
        return Holder(int(note["pid"]), datetime.fromisoformat(note["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Holder(None, None)
