"""A hard time limit for tests of work that must stay linear: far above linear, far below quadratic (no flaky
thresholds; see tests/test_regex_time.py for how the two are told apart)."""
from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class TookTooLong(Exception):
    pass


@contextmanager
def hard_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after `seconds` with TookTooLong. SIGALRM: the main thread only (where pytest and its
    xdist workers run tests); Python's regex engine checks for it as it steps, so a runaway match is interrupted."""

    def expire(signum: int, frame: Any) -> None:
        raise TookTooLong(f"still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def finishes(work: Callable[[], Any], seconds: float) -> bool:
    """Whether `work()` ends within `seconds`."""
    try:
        with hard_limit(seconds):
            work()
    except TookTooLong:
        return False
    return True
