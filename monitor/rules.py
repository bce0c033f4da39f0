"""Alert decisions, pure functions: is a scored review worth a message, how serious, where it goes, is it a spike."""
from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from models.vocab import MIXED_LABEL, NEGATIVE_LABELS
from monitor.keywords import KeywordSet
from monitor.languages import MIXED_IN, packs

STRONGLY_NEGATIVE_SCORE = -0.6


class CriticalWords:
    """The critical words of the review's language plus English (reviews mix); every language when unknown.

    The words are the language packs' `critical` lists; alerting.critical_keywords replaces a language's list.
    Matched per language because folding accents makes words of different languages meet (Polish "sąd", a
    court, folds to English "sad").
    """

    def __init__(self, overrides: Mapping[str, Sequence[str]] | None = None):
        builtin = {code: pack.critical for code, pack in packs().items() if pack.critical}
        self.by_language = {lang: list(words) for lang, words in {**builtin, **(overrides or {})}.items()}
        self._sets: dict[str | None, KeywordSet] = {}

    def find(self, text: str, language: str | None) -> list[str]:
        lang = (language or "").lower()
        if lang in self.by_language:
            if lang not in self._sets:
                self._sets[lang] = KeywordSet([*self.by_language[lang], *self.by_language.get(MIXED_IN, [])])
            return self._sets[lang].find(text)
        # Language unknown: English as usual, the others only as written, accents included.
        if "und" not in self._sets:
            self._sets[MIXED_IN] = self._sets.get(MIXED_IN) or KeywordSet(self.by_language.get(MIXED_IN, []))
            self._sets["und"] = KeywordSet(
                (w for code, words in self.by_language.items() if code != MIXED_IN for w in words), accents=True
            )
        return list(dict.fromkeys(self._sets[MIXED_IN].find(text) + self._sets["und"].find(text)))


@dataclass(frozen=True)
class AlertDecision:
    alert: bool
    severity: str | None  # "normal" | "high" | "critical" when alert
    reason: str


def severity_of(
    *,
    rating: float | None,
    score: float | None,
    text_score: float | None = None,
    keywords: Sequence[str] = (),
) -> tuple[str, str | None]:
    """(severity, why it is critical or None). `score` is the verdict's; `text_score` the text's alone."""
    if keywords:
        return "critical", "mentions " + ", ".join(f"“{k.rstrip('*')}”" for k in keywords[:3])
    if rating is not None and rating <= 1 and text_score is not None and text_score <= STRONGLY_NEGATIVE_SCORE:
        return "critical", "1★ with strongly negative text"
    if (rating is not None and rating <= 1) or (score is not None and score <= STRONGLY_NEGATIVE_SCORE):
        return "high", None
    return "normal", None


def decide(
    *,
    label: str,
    rating: float | None,
    score: float | None,
    published_at: datetime | None,
    first_seen_at: datetime,
    baseline: bool,
    baseline_window: timedelta,
    text_score: float | None = None,
    keywords: Sequence[str] = (),
) -> AlertDecision:
    """Alert on negative reviews, except history found by a source's first crawl (the silent baseline)."""
    if label == MIXED_LABEL:
        # 4-5★ but the text is clearly negative: a mis-click or sarcasm. Worth a look, never more than normal
        # unless it names a legal threat or fraud; not counted as a negative for spikes or reminders.
        if baseline and (published_at is None or published_at < first_seen_at - baseline_window):
            return AlertDecision(False, None, "history from the source's first crawl")
        if keywords:
            severity, why = severity_of(rating=None, score=None, keywords=keywords)
            return AlertDecision(True, severity, why or "mentions a critical word")
        return AlertDecision(True, "normal", "4-5★ but the text is negative (mis-click or sarcasm?)")
    if label not in NEGATIVE_LABELS:
        return AlertDecision(False, None, f"label {label}")
    if baseline:
        # A review with no date in a first crawl cannot be shown to be recent: treat it as history.
        if published_at is None or published_at < first_seen_at - baseline_window:
            return AlertDecision(False, None, "history from the source's first crawl")
    severity, why = severity_of(rating=rating, score=score, text_score=text_score, keywords=keywords)
    return AlertDecision(True, severity, why or "negative review")


# --- routing -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteDecision:
    notify: tuple[str, ...]  # notifier names
    channel: str | None
    mention: str | None
    cadence: str  # "instant" | "digest"
    route: int | None  # index in alerting.routes, None for the business's default


def route_for(
    routes: Sequence[Any],
    *,
    business: str,
    source: str | None,
    severity: str,
    language: str | None,
    default_notify: Sequence[str],
) -> RouteDecision:
    """The first route whose every given key matches; none → the business's `notify`, instant.

    A message about no single source (a business-wide spike) or language matches only routes that do not ask.
    """
    for index, route in enumerate(routes):
        match = route.match
        if match.business and business not in match.business:
            continue
        if match.source and source not in match.source:
            continue
        if match.severity and severity not in match.severity:
            continue
        if match.language and (language or "").lower() not in [code.lower() for code in match.language]:
            continue
        notify = tuple(route.notify if route.notify is not None else default_notify)
        return RouteDecision(notify, route.channel, route.mention, route.cadence, index)
    return RouteDecision(tuple(default_notify), None, None, "instant", None)


# --- spikes --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpikeDecision:
    spike: bool
    count: int
    mean: float
    sd: float
    threshold: float


def spike_of(last_day: int, previous_days: Sequence[int], *, k: float, min_reviews: int) -> SpikeDecision:
    """Is `last_day`'s count of negative reviews above mean + k·σ of the days before (and at least min_reviews)?"""
    mean = statistics.fmean(previous_days) if previous_days else 0.0
    sd = statistics.pstdev(previous_days) if len(previous_days) > 1 else 0.0
    threshold = max(mean + k * sd, float(min_reviews))
    # Strictly above: with a flat history (σ = 0) the usual count itself is never a spike.
    return SpikeDecision(last_day >= threshold and last_day > mean + k * sd, last_day, mean, sd, threshold)
