"""The star-rating path: a site's 1-5 rating decides the label without reading the text."""
from __future__ import annotations

import math

from .verdict import NEG, NEU, POS, Verdict

MIN_STARS, MAX_STARS = 1.0, 5.0


def valid_stars(stars: object) -> float | None:
    """The rating as a float when it is a real number on the 1-5 scale, else None (then the text decides)."""
    if isinstance(stars, bool) or not isinstance(stars, (int, float)):
        return None
    value = float(stars)
    if math.isnan(value) or not MIN_STARS <= value <= MAX_STARS:
        return None
    return value


def verdict_from_stars(stars: float, lang: str) -> Verdict:
    """1-2 neg, 3 neu, 4-5 pos; half stars between 2 and 4 (2.5, 3.5) count as neutral. Score = (stars-3)/2."""
    if stars <= 2:
        label = NEG
    elif stars >= 4:
        label = POS
    else:
        label = NEU
    shown = f"{stars:g}"
    return Verdict(label=label, score=round((stars - 3.0) / 2.0, 4), lang=lang, why=f"{shown}★ rating")
