"""Multilingual keyword matching: case- and accent-insensitive whole words, or word stems written `stem*`."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import cache

from monitor.languages import packs


@cache
def _fold_char(char: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))


@cache
def _letters() -> tuple[dict[int, str], dict[int, str]]:
    """Translation tables from the language packs, applied to all text: (for folding, for keeping accents).

    Both read one letter typed two ways as one (Romanian ş, ţ as ș, ț); folding also maps the letters NFKD leaves
    whole (Polish ł → l). Casefolding already makes ß "ss" and Greek final ς σ.
    """
    same = {letter: meant for pack in packs().values() for letter, meant in pack.same_letters.items()}
    folded = {letter: meant for pack in packs().values() for letter, meant in pack.fold_letters.items()}
    return str.maketrans(same | folded), str.maketrans(same)


def fold(text: str) -> str:
    """Lower case, no accents: 'ÎNȘELĂTORIE' → 'inselatorie', 'Απάτη' → 'απατη', 'sukčiai' → 'sukciai'."""
    lowered = text.casefold().translate(_letters()[0])
    if lowered.isascii():
        return lowered
    return "".join(_fold_char(c) for c in lowered)


def _fold_case(text: str) -> str:
    """Lower case only, accents kept (NFC, a letter typed two ways read as one: Romanian ş as ș)."""
    return unicodedata.normalize("NFC", text).casefold().translate(_letters()[1])


class KeywordSet:
    """A list of keywords compiled once; `find` says which of them a text contains.

    `scam` matches the word "scam" only (not "scampi"); `oszust*` matches every word starting with "oszust"
    (oszustwo, oszustów, oszuści), which is how inflected languages are covered without a stemmer.
    A keyword may be several words ("money back"); spaces match any run of whitespace.
    """

    def __init__(self, keywords: Iterable[str], *, accents: bool = False):
        """`accents=True`: "sąd" does not match "sad" (for text whose language is unknown)."""
        self.keywords = list(dict.fromkeys(k.strip() for k in keywords if k.strip().rstrip("*").strip()))
        self._fold = _fold_case if accents else fold
        alternatives: list[str] = []
        for keyword in self.keywords:
            stem = keyword.endswith("*")
            folded = self._fold(keyword.rstrip("*").strip())
            body = r"\s+".join(re.escape(part) for part in folded.split())
            end = "" if stem else r"(?!\w)"
            alternatives.append(f"(?P<k{len(alternatives)}>{body}{end})")
        self._keyword_of_group = {f"k{i}": keyword for i, keyword in enumerate(self.keywords)}
        self._pattern = re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + ")") if alternatives else None

    def find(self, text: str) -> list[str]:
        """The keywords found in `text`, each once, in the order of first appearance."""
        if self._pattern is None or not text:
            return []
        found: dict[str, None] = {}
        for match in self._pattern.finditer(self._fold(text)):
            found.setdefault(self._keyword_of_group[match.lastgroup or ""], None)
        return list(found)

    def __bool__(self) -> bool:
        return bool(self.keywords)

    def __repr__(self) -> str:
        return f"KeywordSet({self.keywords!r})"
