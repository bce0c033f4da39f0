"""Complaint topics (delivery, refunds, price, …): the language packs' keyword lexicon and the matcher over text."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from monitor.keywords import KeywordSet
from monitor.languages import MIXED_IN, TOPIC_TITLES, packs

# The words are the language packs' `topics` (monitor/languages/), the titles shared by all of them. English is
# checked in every review too (reviews mix languages: an English word in a Polish review is common), except the
# English words a pack lists as `false_friends`: everyday words of its language once accents are folded.
UNDETERMINED = ("", "und")


def encode_topics(topics: Sequence[str]) -> str:
    """How a review's topics are stored (Review.topics): `,delivery,refund,` (found with LIKE '%,delivery,%');
    "" when none was found."""
    return "," + ",".join(topics) + "," if topics else ""


def decode_topics(stored: str | None) -> tuple[str, ...]:
    return tuple(topic for topic in (stored or "").split(",") if topic)


def builtin_topics() -> dict[str, dict[str, list[str]]]:
    """Topic → language → words, from the language packs (every topic of TOPIC_TITLES, languages in pack order)."""
    return {topic: {code: list(pack.topics[topic]) for code, pack in packs().items() if topic in pack.topics}
            for topic in TOPIC_TITLES}  # fmt: skip


def topic_title(topic: str) -> str:
    """How a topic reads in an email: the built-in title, or the config's topic name made readable."""
    if topic in TOPIC_TITLES:
        return TOPIC_TITLES[topic]
    readable = " ".join(topic.replace("_", " ").split()) or topic
    return readable[:1].upper() + readable[1:]  # not .capitalize(): "DHL" stays "DHL"


def merge_topics(
    builtin: Mapping[str, Mapping[str, Sequence[str]]], configured: Mapping[str, Mapping[str, Sequence[str]]]
) -> dict[str, dict[str, list[str]]]:
    """Config over built-ins: a configured topic replaces that topic's words for the languages it lists only."""
    merged = {topic: {lang: list(words) for lang, words in by_lang.items()} for topic, by_lang in builtin.items()}
    for topic, by_lang in configured.items():
        languages = merged.setdefault(topic, {})
        for lang, words in by_lang.items():
            languages[_language(lang) or lang] = list(words)
    return merged


def _language(lang: str | None) -> str | None:
    """'pl', 'PL', 'pl-PL', 'pl_PL' → 'pl'; no language or 'und' → None (check every language)."""
    if lang is None:
        return None
    code = lang.strip().lower().replace("_", "-").split("-")[0]
    return None if code in UNDETERMINED else code


class TopicMatcher:
    """Which complaint topics a review's text mentions, in the review's language and English."""

    def __init__(self, lexicon: Mapping[str, Mapping[str, Sequence[str]]]):
        self.lexicon = {topic: {lang: list(words) for lang, words in by_lang.items()} for topic, by_lang in lexicon.items()}
        self._compiled: dict[str | None, list[tuple[str, KeywordSet]]] = {}

    @classmethod
    def from_config(cls, config: Any | None) -> TopicMatcher:
        """Built-ins merged with config.yaml's `topics:`; None (no config) → the built-ins only."""
        configured = getattr(config, "topics", None) or {}
        return builtin_matcher() if not configured else cls(merge_topics(builtin_topics(), configured))

    @property
    def languages(self) -> list[str]:
        return sorted({lang for by_lang in self.lexicon.values() for lang in by_lang})

    def title(self, topic: str) -> str:
        return topic_title(topic)

    def topics(self, text: str, lang: str | None) -> list[str]:
        """Topic ids found in `text`, most distinct keywords first, then by id."""
        if not text:
            return []
        hits = [(topic, len(keywords.find(text))) for topic, keywords in self._keyword_sets(_language(lang))]
        return [topic for topic, count in sorted(hits, key=lambda hit: (-hit[1], hit[0])) if count]

    def keywords_found(self, text: str, lang: str | None) -> dict[str, list[str]]:
        """Topic → the keywords that made it match: why a topic was attached."""
        found = {topic: keywords.find(text) for topic, keywords in self._keyword_sets(_language(lang))}
        return {topic: words for topic, words in found.items() if words}

    def _keyword_sets(self, lang: str | None) -> list[tuple[str, KeywordSet]]:
        compiled = self._compiled.get(lang)
        if compiled is None:
            compiled = []
            for topic, by_lang in sorted(self.lexicon.items()):
                if lang is None:
                    chosen = [word for words in by_lang.values() for word in words]
                else:
                    skip = set(packs()[lang].false_friends) if lang in packs() and lang != MIXED_IN else set()
                    mixed_in = [word for word in by_lang.get(MIXED_IN, []) if word not in skip]
                    chosen = by_lang.get(lang, []) + mixed_in
                words = list(dict.fromkeys(chosen))
                keywords = KeywordSet(words)
                if keywords:
                    compiled.append((topic, keywords))
            self._compiled[lang] = compiled
        return compiled


@cache
def builtin_matcher() -> TopicMatcher:
    """One shared matcher over the built-in lexicon (compiled lazily, once per language)."""
    return TopicMatcher(builtin_topics())
