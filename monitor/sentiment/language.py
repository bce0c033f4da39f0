"""Language codes and detection: normalise what a site tells us, detect (lingua, lazily) what it does not."""
from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

from lingua import IsoCode639_1, IsoCode639_3, Language, LanguageDetectorBuilder

from monitor.languages import packs

from .verdict import UNDETERMINED

# The languages the monitored sites write in: one language pack each (monitor/languages/).
DEFAULT_LANGUAGES: tuple[str, ...] = tuple(packs())

# Lingua in low-accuracy (trigram-only) mode: measured here for the 23 default languages, models ~50 MB resident
# (process RSS 62 MB) and 0.2 s to load, vs ~650 MB and 3 s for high-accuracy mode. The two modes are identical
# on texts of 120+ characters; on 3-8 word snippets low mode guesses wrong more often, so short texts need a
# higher confidence before we believe it (wrong-language rate on 5-word snippets of the fixtures at 0.7: 1-4 %).
MIN_WORDS = 3  # below this, detection is a coin toss: trust the site's language or say "und"
SHORT_TEXT_CHARS = 120
MIN_CONFIDENCE_SHORT = 0.7
MIN_CONFIDENCE_LONG = 0.5
DETECT_CHARS = 1000  # lingua's cost is linear in length; the first 1,000 characters are plenty

_LINGUA_CODE = {code: pack.lingua for code, pack in packs().items() if pack.lingua}  # "no" -> "nb" (Bokmål)
_REPORTED_AS = {alias: code for code, pack in packs().items() for alias in pack.aliases}  # "nb", "nn" -> "no"
_CODE = re.compile(r"^[a-z]{2,3}$")


def normalize_lang(code: str | None) -> str | None:
    """'en-US' -> 'en', 'PT_br' -> 'pt', 'nb' -> 'no', 'eng' -> 'en'; None for empty or unrecognisable codes."""
    if not code or not isinstance(code, str):
        return None
    primary = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    if not _CODE.match(primary):
        return None
    if len(primary) == 3:
        if primary == UNDETERMINED:
            return None
        primary = _iso639_3_to_1(primary)
        if primary is None:
            return None
    return _REPORTED_AS.get(primary, primary)


def _iso639_3_to_1(code: str) -> str | None:
    try:
        return Language.from_iso_code_639_3(IsoCode639_3.from_str(code)).iso_code_639_1.name.lower()
    except (ValueError, AttributeError):
        return None


class LanguageDetector:
    """Lingua restricted to a set of languages, built on first use (once per instance) and safe across threads."""

    def __init__(self, languages: Sequence[str] | None = None, *, min_confidence: float = MIN_CONFIDENCE_LONG) -> None:
        codes = [normalize_lang(code) for code in (languages or DEFAULT_LANGUAGES)]
        self.languages: tuple[str, ...] = tuple(dict.fromkeys(code for code in codes if code))
        if len(self.languages) < 2:
            raise ValueError(f"language detection needs at least two languages, got {list(languages or [])!r}")
        self.min_confidence = min_confidence
        self._detector: Any = None  # lingua's LanguageDetector, built on first use
        self._lock = threading.Lock()

    def _lingua_languages(self) -> list:
        lingua_languages = []
        for code in self.languages:
            try:
                iso = IsoCode639_1.from_str(_LINGUA_CODE.get(code, code))
                lingua_languages.append(Language.from_iso_code_639_1(iso))
            except ValueError:
                raise ValueError(f"language detection does not know {code!r}") from None
        return lingua_languages

    def check(self) -> None:
        """Raise ValueError for a language lingua does not know (without loading any model)."""
        self._lingua_languages()

    def _build(self):
        return (
            LanguageDetectorBuilder.from_languages(*self._lingua_languages())
            .with_low_accuracy_mode()
            .with_preloaded_language_models()
            .build()
        )

    def load(self) -> None:
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    self._detector = self._build()

    def detect(self, text: str) -> str:
        """The text's ISO 639-1 code, or "und" when it is too short or lingua is not confident enough."""
        if len(text.split()) < MIN_WORDS:
            return UNDETERMINED
        self.load()
        sample = text[:DETECT_CHARS]
        values = self._detector.compute_language_confidence_values(sample)
        if not values:
            return UNDETERMINED
        best = values[0]
        needed = max(MIN_CONFIDENCE_SHORT, self.min_confidence) if len(sample) < SHORT_TEXT_CHARS else self.min_confidence
        if best.value < needed:
            return UNDETERMINED
        code = best.language.iso_code_639_1.name.lower()
        return _REPORTED_AS.get(code, code)
