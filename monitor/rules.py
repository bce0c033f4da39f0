"""Alert decisions: is this scored review worth a message, and how serious is it. Pure functions."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

NEGATIVE_LABELS = frozenset({"neg"})
STRONGLY_NEGATIVE_SCORE = -0.6


@dataclass(frozen=True)
class AlertDecision:
    alert: bool
    severity: str | None  # "normal" | "high" when alert
    reason: str


def severity_of(*, rating: float | None, score: float | None) -> str:
    if (rating is not None and rating <= 1) or (score is not None and score <= STRONGLY_NEGATIVE_SCORE):
        return "high"
    return "normal"


def decide(
    *,
    label: str,
    rating: float | None,
    score: float | None,
    published_at: datetime | None,
    first_seen_at: datetime,
    baseline: bool,
    baseline_window: timedelta,
) -> AlertDecision:
    """Alert on negative reviews, except history found by a source's first crawl (the silent baseline)."""
    if label not in NEGATIVE_LABELS:
        return AlertDecision(False, None, f"label {label}")
    if baseline:
        # A review with no date in a first crawl cannot be shown to be recent: treat it as history.
        if published_at is None or published_at < first_seen_at - baseline_window:
            return AlertDecision(False, None, "history from the source's first crawl")
    return AlertDecision(True, severity_of(rating=rating, score=score), "negative review")
