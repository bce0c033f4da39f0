"""The scorer's value types: what goes in (TextInput) and what comes out (Verdict)."""
from __future__ import annotations

from dataclasses import dataclass

NEG, NEU, POS, UNSCORED = "neg", "neu", "pos", "unscored"
MIXED = "mixed"  # a 4-5★ rating whose text is clearly negative: a mis-click or sarcasm, for the rules to decide
LABELS = (NEG, NEU, POS, MIXED, UNSCORED)
UNDETERMINED = "und"  # ISO 639-2 code for "undetermined language"


@dataclass(frozen=True)
class TextInput:
    text: str
    stars: float | None = None  # 1-5 scale
    lang: str | None = None  # ISO 639-1 if the site told us, else None -> detect


@dataclass(frozen=True)
class Verdict:
    label: str  # "neg" | "neu" | "pos" | "mixed" | "unscored"
    score: float | None  # -1 (very negative) .. +1; None when unscored
    lang: str  # detected or given ISO 639-1, "und" when unknown
    why: str  # short human reason

    def as_dict(self) -> dict:
        return {"label": self.label, "score": self.score, "lang": self.lang, "why": self.why}


def quote(sentence: str, limit: int = 160) -> str:
    """A sentence for a `why`, on one line and cut to `limit` characters with an ellipsis."""
    flat = " ".join(sentence.split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return f'"{flat}"'
