"""Draft replies shown with an alert: per-language, per-topic templates (built in, overridable in config)."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from monitor.languages import DEFAULT_DRAFT, packs

# The built-in drafts are the language packs' `drafts` (monitor/languages/), with {author}, {business} and {site};
# `[…]` marks what the owner must fill in before posting: a draft is never posted by repwatch. They apologise and
# move the conversation to a private channel, which is what review platforms and reputation guides advise for a
# public reply to a complaint.
FALLBACK_LANGUAGE = "en"


class Drafts:
    """Chooses and fills the draft for a review: its language (else English), its first topic with a template,
    else that language's `default`. Config entries win over built-ins, key by key."""

    def __init__(self, overrides: Mapping[str, Mapping[str, str]] | None = None):
        self.templates = {code: dict(pack.drafts) for code, pack in packs().items() if pack.drafts}
        for lang, by_topic in (overrides or {}).items():
            self.templates.setdefault(lang.lower(), {}).update(by_topic)

    def template(self, language: str | None, topics: Sequence[str] = ()) -> str | None:
        for lang in dict.fromkeys([(language or "").lower(), FALLBACK_LANGUAGE]):
            by_topic = self.templates.get(lang)
            if not by_topic:
                continue
            for topic in [*topics, DEFAULT_DRAFT]:
                if topic in by_topic:
                    return by_topic[topic]
        return None

    def draft(self, *, language: str | None, topics: Sequence[str] = (), author: str | None, business: str,
              site: str) -> str | None:
        template = self.template(language, topics)
        if template is None:
            return None
        # Placeholders were checked when the packs and the config were loaded; values are plain text (the
        # notifier escapes).
        text = template.format(author=" ".join((author or "").split())[:60], business=business, site=site)
        return re.sub(r"\s+([,.;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
