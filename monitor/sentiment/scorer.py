"""The score stage: stars first, then the text in its language; also the `repwatch score` JSON Lines filter."""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import TextIO

from .english import EnglishScorer
from .language import LanguageDetector, normalize_lang
from .stars import valid_stars, verdict_from_stars
from .verdict import UNDETERMINED, UNSCORED, TextInput, Verdict


class Scorer:
    """Scores reviews: the rating when there is one, else the text with the scorer for its language.

    Cheap to construct; the language detector and VADER load on first use. One instance can be shared by the
    threads of a process (loading is locked; afterwards everything is read-only).
    """

    def __init__(self, *, languages: Sequence[str] | None = None) -> None:
        self.detector = LanguageDetector(languages)
        self.english = EnglishScorer()

    def warm_up(self) -> None:
        """Load the detector and VADER now (a long-running service may prefer paying at start, not on first use)."""
        self.detector.load()
        self.english.score("Warm up.")

    def score(self, item: TextInput) -> Verdict:
        return self.score_many([item])[0]

    def score_many(self, items: Sequence[TextInput]) -> list[Verdict]:
        return [self._score_one(item) for item in items]

    def _score_one(self, item: TextInput) -> Verdict:
        given = normalize_lang(item.lang)
        stars = valid_stars(item.stars)
        if stars is not None:
            # The fast path: no detector, no lexicon. The language is only what the site told us.
            return verdict_from_stars(stars, given or UNDETERMINED)
        text = item.text if isinstance(item.text, str) else ""
        if not text.strip():
            return Verdict(UNSCORED, None, given or UNDETERMINED, "no text and no rating")
        lang = given or self.detector.detect(text)
        if lang == "en":
            return self.english.score(text, lang)
        if lang == UNDETERMINED:
            return Verdict(UNSCORED, None, lang, "language not determined (text too short or ambiguous)")
        return Verdict(UNSCORED, None, lang, f"no text scorer for {lang} yet")


SCORE_BATCH = 256  # lines scored together: bounded memory, and output keeps flowing on a long input


def score_jsonl(lines: Iterable[str], out: TextIO, *, lang: str = "auto", scorer: Scorer | None = None) -> int:
    """`repwatch score`: JSON Lines {"text", "stars"?, "lang"?} in, the same objects plus "sentiment" out.

    A line's own "lang" wins over `lang`; `lang="auto"` detects when the line has none. A line that is not a
    JSON object with a string "text" (or a rating) comes out in place as {"line": N, "error": ...} (a JSON object
    keeps its fields). Blank lines are skipped. Returns the number of lines scored.
    """
    scorer = scorer or Scorer()
    default_lang = None if lang in (None, "", "auto") else lang
    scored = 0
    batch: list[tuple[dict, TextInput | None]] = []

    def flush() -> None:
        nonlocal scored
        inputs = [item for _, item in batch if item is not None]
        verdicts = iter(scorer.score_many(inputs))
        for record, item in batch:
            if item is not None:
                record["sentiment"] = next(verdicts).as_dict()
                scored += 1
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        batch.clear()

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record, problem = _parse_line(line)
        if problem is not None:
            batch.append(({**record, "line": number, "error": problem}, None))
        else:
            item = TextInput(text=record.get("text") or "", stars=record.get("stars"),
                             lang=record.get("lang") or default_lang)  # fmt: skip
            batch.append((record, item))
        if len(batch) >= SCORE_BATCH:
            flush()
    flush()
    return scored


def _parse_line(line: str) -> tuple[dict, str | None]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return {}, f"not valid JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(record, dict):
        return {}, f"expected a JSON object, got {type(record).__name__}"
    text, stars, lang = record.get("text"), record.get("stars"), record.get("lang")
    if text is not None and not isinstance(text, str):
        return record, '"text" must be a string'
    if stars is not None and (isinstance(stars, bool) or not isinstance(stars, (int, float))):
        return record, '"stars" must be a number from 1 to 5'
    if isinstance(stars, float) and not math.isfinite(stars):
        return record, '"stars" must be a number from 1 to 5'
    if lang is not None and not isinstance(lang, str):
        return record, '"lang" must be a language code such as "en"'
    if not (text or "").strip() and stars is None:
        return record, 'needs a "text" or "stars"'
    return record, None
