"""The score stage: stars first, then the text in its language; also the `repwatch score` JSON Lines filter."""
from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .cues import ComplaintCues
from .english import EnglishScorer
from .head import Head
from .language import MIN_CONFIDENCE_LONG, LanguageDetector, normalize_lang
from .model import MAX_CHARS, MAX_TOKENS, EmbeddingCache, ModelUnavailable, TextModel
from .multilingual import MIXED_AT_OR_BELOW as MIXED_TEXT_AT_OR_BELOW
from .multilingual import MultilingualScorer, calibrated_score
from .stars import valid_stars, verdict_from_stars
from .verdict import MIXED, NEG, UNDETERMINED, UNSCORED, TextInput, Verdict, quote

log = logging.getLogger("repwatch.sentiment")

# A 4-5★ review is `mixed` when its text alone is clearly negative, not merely lukewarm: a possible mis-click or
# sarcasm, for the rules to decide. The model's cut is MIXED_TEXT_AT_OR_BELOW on its own axis; without the model,
# VADER's calibrated score at or below this.
MIXED_AT_OR_BELOW = -0.5
MIXED_MIN_STARS = 4.0
OWNER_HEAD = Path("sentiment") / "head.npz"  # under data_dir, written by `repwatch train`
EMBEDDING_CACHE = Path("sentiment") / "embeddings.sqlite"


@dataclass(frozen=True)
class _Pending:
    index: int
    text: str
    lang: str
    stars: float | None  # set: a 4-5★ review whose text may make it `mixed`


class Scorer:
    """Scores reviews: the rating when there is one, else the text with the multilingual model (VADER without it).

    Cheap to construct; the detector, VADER and the model load on first use. One instance can be shared by the
    threads of a process (loading is locked; model calls are serialised). If the model cannot load, the scorer
    says so once (a warning on the `repwatch.sentiment` logger) and scores English with VADER, other text not.
    """

    def __init__(
        self,
        *,
        languages: Sequence[str] | None = None,
        model: bool = True,
        threads: int = 1,
        cache_size: int = 4096,
        min_language_confidence: float = MIN_CONFIDENCE_LONG,
        data_dir: Path | None = None,
        model_path: Path | str | None = None,
        max_chars: int = MAX_CHARS,
        max_tokens: int = MAX_TOKENS,
        engine: str = "auto",
    ) -> None:
        self.detector = LanguageDetector(languages, min_confidence=min_language_confidence)
        self.english = EnglishScorer()
        self.cues = ComplaintCues()
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.fallback_reason: str | None = None if model else "the multilingual model is off (sentiment.model: false)"
        self.model: TextModel | None = None
        if model:
            cache_path = self.data_dir / EMBEDDING_CACHE if self.data_dir is not None else None
            self.model = TextModel(threads=threads, cache=EmbeddingCache(cache_size, cache_path), model_path=model_path,
                                   max_chars=max_chars, max_tokens=max_tokens, engine=engine,
                                   data_dir=self.data_dir)  # fmt: skip
        self._text: MultilingualScorer | None = None

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> Scorer:
        """A scorer as config.yaml's `sentiment:` section says, with the owner's trained head under data_dir."""
        settings = config.sentiment
        options = dict(languages=settings.languages, model=settings.model, threads=settings.threads,
                       cache_size=settings.cache_size, min_language_confidence=settings.min_language_confidence,
                       data_dir=config.data_dir, engine=settings.engine)  # fmt: skip
        return cls(**(options | overrides))

    @property
    def owner_head_path(self) -> Path | None:
        return self.data_dir / OWNER_HEAD if self.data_dir is not None else None

    def text_scorer(self) -> MultilingualScorer | None:
        """The model-backed scorer, or None (and one warning, the first time) when the model cannot load."""
        if self._text is not None:
            return self._text
        if self.model is None or self.fallback_reason is not None:
            return None
        try:
            self.model.load()
            if self.model.fallback_note:
                log.warning("sentiment: %s", self.model.fallback_note)
            text = MultilingualScorer(self.model)
            head_path = self.owner_head_path
            if head_path is not None and head_path.is_file():
                try:
                    text = MultilingualScorer(self.model, Head.load(head_path), owner=True)
                except (OSError, ValueError, KeyError) as exc:
                    log.warning("sentiment: ignoring the trained head %s (%s); using the default one", head_path, exc)
            text.head  # noqa: B018 - fit or load the head now, inside the fallback's try
        except ModelUnavailable as exc:
            self.fallback_reason = f"the multilingual model could not load ({exc})"
            log.warning("sentiment: %s: English is scored with VADER only, other languages are left unscored",
                        self.fallback_reason)  # fmt: skip
            return None
        self._text = text
        return text

    def without_owner_head(self) -> Scorer:
        """This scorer (sharing its model and caches) with the default anchor head: `repwatch train`'s "before"."""
        default = copy.copy(self)
        default.data_dir = None
        default._text = None
        return default

    def warm_up(self) -> None:
        """Load the detector, VADER and the model now (a service may prefer paying at start, not on first use)."""
        self.detector.load()
        self.english.score("Warm up.")
        if self.text_scorer() is not None and self.model is not None:
            self.model.embed(["Warm up."])

    def score(self, item: TextInput) -> Verdict:
        return self.score_many([item])[0]

    def score_many(self, items: Sequence[TextInput]) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(items)
        pending: list[_Pending] = []
        for index, item in enumerate(items):
            given = normalize_lang(item.lang)
            stars = valid_stars(item.stars)
            text = item.text if isinstance(item.text, str) else ""
            if stars is not None:
                # The fast path: no detector, no model, unless a high rating comes with complaint words.
                verdicts[index] = verdict_from_stars(stars, given or UNDETERMINED)
                if stars >= MIXED_MIN_STARS and text and self.cues.found(text, given):
                    pending.append(_Pending(index, text, given or self.detector.detect(text), stars))
                continue
            if not text.strip():
                verdicts[index] = Verdict(UNSCORED, None, given or UNDETERMINED, "no text and no rating")
                continue
            pending.append(_Pending(index, text, given or self.detector.detect(text), None))
        if pending:
            scorer = self.text_scorer()
            if scorer is not None:
                self._score_with_model(scorer, pending, verdicts)
            else:
                self._score_without_model(pending, verdicts)
        return verdicts  # type: ignore[return-value]  # every slot is filled above

    def _score_with_model(self, scorer: MultilingualScorer, pending: list[_Pending], verdicts: list) -> None:
        # Negative and mixed verdicts quote their most negative sentence: only those texts are read by sentence.
        gates = [scorer.band(p.lang).neg if p.stars is None else MIXED_TEXT_AT_OR_BELOW for p in pending]
        for p, reading in zip(pending, scorer.read([p.text for p in pending], gates), strict=True):
            if p.stars is None:
                verdicts[p.index] = scorer.verdict(p.text, p.lang, reading)
            elif reading.score.s <= MIXED_TEXT_AT_OR_BELOW:
                score = calibrated_score(reading.score.s, scorer.band(p.lang))
                verdicts[p.index] = _mixed(p, score, reading.worst or p.text)

    def _score_without_model(self, pending: list[_Pending], verdicts: list) -> None:
        for p in pending:
            if p.lang != "en":
                if p.stars is None:
                    verdicts[p.index] = Verdict(UNSCORED, None, p.lang, _no_scorer(p.lang, self.fallback_reason))
                continue
            verdict = self.english.score(p.text, p.lang)
            if p.stars is None:
                verdicts[p.index] = verdict
            elif verdict.label == NEG and verdict.score is not None and verdict.score <= MIXED_AT_OR_BELOW:
                worst = verdict.why.removeprefix("negative text: ").strip('"')
                verdicts[p.index] = _mixed(p, verdict.score, worst)


def _mixed(p: _Pending, score: float, sentence: str) -> Verdict:
    return Verdict(MIXED, score, p.lang, f"{p.stars:g}★ rating but negative text: {quote(sentence)}")


def _no_scorer(lang: str, reason: str | None) -> str:
    what = "language not determined" if lang == UNDETERMINED else f"no text scorer for {lang}"
    return f"{what} ({reason})" if reason else what


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
            # A line refused for its lone surrogates comes back \u-escaped, as it came in: raw, it cannot be written.
            escaped = record.get("error") == NOT_UNICODE
            out.write(json.dumps(record, ensure_ascii=escaped) + "\n")
        out.flush()
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


NOT_UNICODE = "not valid Unicode text: a lone surrogate (\\ud800-\\udfff) or a byte that is not UTF-8"


def _parse_line(line: str) -> tuple[dict, str | None]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return {}, f"not valid JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(record, dict):
        return {}, f"expected a JSON object, got {type(record).__name__}"
    if not is_unicode(record):
        return record, NOT_UNICODE
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


def is_unicode(record: Any) -> bool:
    """Whether a parsed JSON value is text that can be encoded: JSON's \\ud800 escapes and bytes read as
    surrogateescape decode to lone surrogates, which the detector, the model and the output would each die on."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
