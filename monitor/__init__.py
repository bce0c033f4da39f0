"""repwatch service: config, scoring, rules, crawl orchestration, scheduling, CLI; `batched`, which several use."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def batched(items: Sequence[T], size: int) -> list[list[T]]:
    """`items` in order, in lists of at most `size` (itertools.batched arrives with Python 3.12)."""
    size = max(1, size)
    return [list(items[start:start + size]) for start in range(0, len(items), size)]
