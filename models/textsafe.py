"""Making untrusted web text safe to show in a terminal: no escape sequences, no bidi tricks."""
from __future__ import annotations

import re

# C0/C1 controls except tab and newline, DEL, and Unicode bidi overrides/isolates (Trojan-Source style tricks).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ANSI_SEQUENCE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def terminal_safe(text: str | None, limit: int | None = None) -> str:
    """Strip ANSI sequences and control characters; optionally cut to `limit` characters with an ellipsis."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # a lone CR would overwrite the line: make it a break
    text = _UNSAFE.sub("", ANSI_SEQUENCE.sub("", text))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text
