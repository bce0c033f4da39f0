"""Complaint cues per language: the cheap screen that picks which 4-5★ reviews get their text read."""
from __future__ import annotations

from monitor.keywords import KeywordSet
from monitor.languages import MIXED_IN, packs

# A 4-5★ review is read by the text scorer (to flag it `mixed`) only when one of its language pack's `cues` appears:
# reading every rated review would cost the model's time on the bulk of reviews that are simply positive.


class ComplaintCues:
    """`found(text, lang)`: the cues of the text's language (and English: reviews mix), all of them when unknown."""

    def __init__(self) -> None:
        self.by_language = {code: list(pack.cues) for code, pack in packs().items() if pack.cues}
        self._sets: dict[str, KeywordSet] = {}

    def found(self, text: str, lang: str | None) -> list[str]:
        key = lang if lang in self.by_language else "*"
        if key not in self._sets:
            words = [w for words in self.by_language.values() for w in words] if key == "*" else \
                self.by_language[key] + (self.by_language.get(MIXED_IN, []) if key != MIXED_IN else [])  # fmt: skip
            self._sets[key] = KeywordSet(words)
        return self._sets[key].find(text)
