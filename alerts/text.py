"""Untrusted review text made safe for each target (Slack mrkdwn, Discord Markdown, Teams cards) and fitted to limits."""
from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote, urlsplit

# Slack's button URL limit; every target takes the same links, so a longer one is no link anywhere.
URL_MAX = 3000
ZERO_WIDTH_SPACE = "\u200b"

_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # C0/C1 controls (keeps \t \n \r), incl. ESC of terminal sequences
    "\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks/overrides/isolates: they can make text read backwards
    "\ufeff]"
)
# Lone surrogates (json.loads makes them from "\\ud800" in a page's JSON-LD) cannot be sent as UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")
_URL_UNSAFE = re.compile(r'[\s<>"|`\\^{}]')


# --------------------------------------------------------------------------------------------------------------
# Every target


def visible_text(text: str | None, *, single_line: bool = False) -> str:
    """Untrusted text without invisible controls; `single_line` folds all whitespace runs to one space."""
    text = _SURROGATE.sub("\ufffd", _INVISIBLE.sub("", text or "")).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n")
    if single_line:
        return " ".join(text.split())
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def without_surrogates(text: str | None) -> str | None:
    """Text as found on the site, except lone surrogates (not encodable as UTF-8)."""
    return None if text is None else _SURROGATE.sub("\ufffd", text)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: the stricter count Slack and Discord may apply (an emoji counts 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def safe_review_url(url: str | None) -> str | None:
    """The review link if it is a plain http(s) URL that fits a button, else None (never javascript:, file:, …)."""
    url = (url or "").strip()
    if not url or _INVISIBLE.search(url) or _SURROGATE.search(url):
        return None
    # Characters that would end a Slack <url|label> or break out of it are percent-encoded; the rest stays
    # (non-ASCII too: an internationalised host name must survive).
    url = _URL_UNSAFE.sub(lambda m: quote(m.group()), url)
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if utf16_len(slack_escape(url)) > URL_MAX:
        return None
    return url


def fit_pieces(pieces: list[str], limit: int, suffix: str = "…") -> str:
    """The pieces joined, cut between pieces so that the result plus `suffix` is at most `limit` UTF-16 units.

    A piece is one source character after escaping, so a cut never splits an escape (a lone backslash at the end
    of a Discord text would escape our suffix, or worse, the next piece of markup).
    """
    whole = "".join(pieces)
    if utf16_len(whole) <= limit:
        return whole
    budget = limit - utf16_len(suffix)
    out: list[str] = []
    used = 0
    for piece in pieces:
        size = utf16_len(piece)
        if used + size > budget:
            break
        out.append(piece)
        used += size
    return "".join(out).rstrip() + suffix


def fit_plain(text: str, limit: int) -> str:
    """Text that is shown as typed (Teams TextRuns, Discord footers), cut to `limit`."""
    return fit_pieces(list(text), limit)


# --------------------------------------------------------------------------------------------------------------
# Slack
#
# Everything that comes from a review site goes into Block Kit `plain_text` objects with emoji=False: Slack does not
# parse mrkdwn, mentions, links or :emoji: codes there. On top of that `&`, `<`, `>` are escaped as Slack documents
# for every text object, so no `<...>` control sequence can form even where text is parsed. The top-level `text`
# (notification fallback, parsed as mrkdwn) gets the same escaping; as mrkdwn has no escape for `*_~\``, a
# zero-width space follows each, so no pair can open a format.

_FORMAT_MARKS = re.compile(r"([*_~`])")


def slack_escape(text: str) -> str:
    """Slack's control characters as the entities Slack decodes for display."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inert_mrkdwn(text: str) -> str:
    """Untrusted text made safe to put inside mrkdwn: escaped, and no formatting marker can pair up."""
    return _FORMAT_MARKS.sub(r"\1" + ZERO_WIDTH_SPACE, slack_escape(text))


def fit(raw: str, limit: int, suffix: str = "…", *, transform: Callable[[str], str] = slack_escape) -> str:
    """transform(raw), cut on a character boundary so that the result plus `suffix` is at most `limit` long."""
    whole = transform(raw)
    if utf16_len(whole) <= limit:
        return whole
    budget = limit - utf16_len(suffix)
    out: list[str] = []
    used = 0
    for char in raw:  # char by char, so a cut never splits an escape, and a long text is not transformed twice
        piece = transform(char)
        if used + utf16_len(piece) > budget:
            break
        out.append(piece)
        used += utf16_len(piece)
    return "".join(out).rstrip() + suffix


# --------------------------------------------------------------------------------------------------------------
# Discord renders Markdown in content, embed titles, descriptions and field values: **bold**, __underline__,
# ~~strike~~, ||spoilers||, `code`, [masked](links), <@mentions>, <t:timestamps>, and at the start of a line
# > quotes, # headings, -# subtext and lists. A backslash before ASCII punctuation shows that character
# literally, so every character that can open an inline construct is escaped, and the line-start markers only
# where they start a line (escaping every "-" or "." would make the raw text unreadable for no gain). Pings are
# stopped separately by allowed_mentions; an escaped \@everyone does not even read as a mention.

_DISCORD_SPECIAL = frozenset("\\*_~`|<>[]@")
_LINE_START_MARK = re.compile(r"^[ \t]*(?:([#+-])|\d+([.)]))", flags=re.MULTILINE)


def discord_pieces(text: str) -> list[str]:
    """One piece per character of `text`, backslash-escaped where Discord would read it as Markdown."""
    marks = {match.start(match.lastindex or 0) for match in _LINE_START_MARK.finditer(text)}
    return ["\\" + char if char in _DISCORD_SPECIAL or index in marks else char for index, char in enumerate(text)]


def discord_escape(text: str) -> str:
    return "".join(discord_pieces(text))


def fit_discord(text: str, limit: int) -> str:
    return fit_pieces(discord_pieces(text), limit)


# --------------------------------------------------------------------------------------------------------------
# Teams: TextBlock renders a Markdown subset (**bold**, _italic_, lists, [links](url)), and backslash escapes are
# rendered inconsistently across Teams clients (AdaptiveCards issues #5590, #4677; mobile fixes into 2024).
# RichTextBlock's TextRun is documented as never rendering Markdown, so untrusted text goes only into TextRuns;
# TextBlocks carry only our own words. {{DATE(...)}}/{{TIME(...)}} functions are broken up as well.


def teams_inert(text: str) -> str:
    return text.replace("{{", "{" + ZERO_WIDTH_SPACE + "{")
