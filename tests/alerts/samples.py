"""Sample notices and receiver-side checks the Teams, Discord, webhook and email tests share."""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.base import Alert, AlertUpdate, DeliveryError, FloodSummary, Notice, Reminder, Spike
from alerts.discord import (
    DESCRIPTION_MAX,
    EMBED_TOTAL_MAX,
    FIELD_NAME_MAX,
    FIELD_VALUE_MAX,
    FIELDS_MAX,
    FOOTER_MAX,
    TITLE_MAX,
)
from tests.alerts.servers import TOKEN

HEADER_SECRET = "Bearer hdr-secret-98765"
HOSTILE_BODY = (
    "@everyone @here <script>alert(1)</script> **bold** __under__ ~~gone~~ ||spoiler|| `code`\n"
    "[link](http://evil.example/steal) <@123456789> <t:1700000000:R> {{DATE(2017-02-14T06:08:39Z, SHORT)}}\n"
    "# heading\n- item\n1. first\n> quoted"
)
HOSTILE_TITLE = "**Title** [x](http://evil.example)"
HOSTILE_AUTHOR = "<@&987654321> _eve_"
UNTIL = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
# Review text at its worst: Markdown, links, mentions in three syntaxes, a lone surrogate, 10,000 characters.
HOSTILE_LONG = HOSTILE_BODY + "\n<!channel> <!here> [click](http://evil.example) lone \ud800 surrogate\n" + "@everyone " * 1000
KINDS = ["update", "update-open", "reminder", "spike", "summary"]


def assert_secret_free(error: DeliveryError, url: str) -> None:
    for shown in (str(error), repr(error), error.message):
        assert url not in shown and TOKEN not in shown and "hdr-secret" not in shown, shown


def all_notices(alert: Alert, other: Alert, *, changes: tuple[str, ...] = ("rating 1★ → 4★", "the business replied on the site"),
                many: int = 3) -> dict[str, Notice]:
    items = (other, *[replace(alert, review_id=100 + n) for n in range(many - 1)])
    return {
        "update": AlertUpdate(replace(alert, rating=4), changes, original=None, settled=True),
        "update-open": AlertUpdate(alert, changes, original=None, settled=False),
        "reminder": Reminder(alert, waiting=timedelta(hours=53, minutes=20), deadline=timedelta(hours=48)),
        "spike": Spike("Acme Bakery", "acme-trustpilot", "Trustpilot", count=9, mean=1.3, sd=0.84, threshold=3.82, until=UNTIL,
                       examples=(other, alert, alert, alert)),
        "summary": FloodSummary(count=len(items), by_business=(("Acme Bakery", len(items)),),
                                by_severity=(("critical", 1), ("high", len(items) - 1)), items=items, threaded=False),
    }


def hostile_notices(alert: Alert, other: Alert) -> dict[str, Notice]:
    """Every notice type with the worst text in every field a site or a config can put there."""
    bad = replace(alert, body=HOSTILE_LONG, title=HOSTILE_TITLE + " <!channel>", author=HOSTILE_AUTHOR, why="**never** @here",
                  draft_reply="Sorry [click](http://evil.example) @everyone", business="Acme @everyone *Bakery*", site="Trust_pilot <!here>")
    changes = ("title now: [click](http://evil.example) @everyone", "body edited: " + HOSTILE_LONG)
    notices = all_notices(bad, replace(other, body=HOSTILE_LONG), changes=changes * 20, many=60)
    notices["spike"] = replace(notices["spike"], business=bad.business, site=bad.site)
    return notices


# Discord, as Discord checks a webhook message ------------------------------------------------------------------


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def check_discord(message: dict[str, Any]) -> dict[str, Any]:
    """Discord's documented limits and our allowed_mentions promise; returns the one embed."""
    assert message["allowed_mentions"] == {"parse": []}
    assert utf16(message.get("content", "")) <= 2000
    [embed] = message["embeds"]
    assert utf16(embed["title"]) <= TITLE_MAX
    assert utf16(embed["description"]) <= DESCRIPTION_MAX
    assert len(embed["fields"]) <= FIELDS_MAX
    for field in embed["fields"]:
        assert 0 < utf16(field["name"]) <= FIELD_NAME_MAX and 0 < utf16(field["value"]) <= FIELD_VALUE_MAX
    assert utf16(embed["footer"]["text"]) <= FOOTER_MAX
    total = utf16(embed["title"]) + utf16(embed["description"]) + utf16(embed["footer"]["text"])
    total += sum(utf16(f["name"]) + utf16(f["value"]) for f in embed["fields"])
    assert total <= EMBED_TOTAL_MAX
    assert embed.get("url", "https://x").startswith(("https://", "http://"))
    assert isinstance(embed["color"], int) and 0 <= embed["color"] <= 0xFFFFFF
    return embed


def unescaped(text: str, chars: str) -> list[str]:
    """Markdown characters in `text` that no backslash protects (what Discord would act on)."""
    found, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            i += 2
            continue
        if text[i] in chars:
            found.append(text[i])
        i += 1
    return found


def unescape(text: str) -> str:
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)  # CommonMark: a backslash before ASCII punctuation


# Teams, as Teams reads an incoming-webhook message --------------------------------------------------------------


def check_teams(message: dict[str, Any]) -> dict[str, Any]:
    """The incoming-webhook envelope and an Adaptive Card Teams accepts; returns the card."""
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] in ("1.2", "1.3", "1.4", "1.5")
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    for element in card["body"]:
        assert element["type"] in ("TextBlock", "RichTextBlock")
        if element["type"] == "RichTextBlock":
            assert element["inlines"] and all(run["type"] == "TextRun" and run["text"] for run in element["inlines"])
        else:
            assert element["text"]
    return card


def texts(card: dict[str, Any], kind: str) -> list[str]:
    """Every TextBlock's text, or every TextRun's."""
    if kind == "TextBlock":
        return [e["text"] for e in card["body"] if e["type"] == "TextBlock"]
    return [run["text"] for e in card["body"] if e["type"] == "RichTextBlock" for run in e["inlines"]]
