"""Webhook notifier against a real local HTTP server: JSON, Teams and Discord bodies as receivers check them, errors, CLI."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

import alerts.webhook as webhook_module
from alerts.base import (
    Alert,
    AlertUpdate,
    DeliveryError,
    FloodSummary,
    Notice,
    Reminder,
    Spike,
    Target,
    build_notifier,
)
from alerts.webhook import (
    DISCORD_DESCRIPTION_MAX,
    DISCORD_EMBED_TOTAL_MAX,
    DISCORD_FIELD_NAME_MAX,
    DISCORD_FIELD_VALUE_MAX,
    DISCORD_FIELDS_MAX,
    DISCORD_FOOTER_MAX,
    DISCORD_TITLE_MAX,
    TEAMS_PAYLOAD_MAX,
    WebhookConfig,
    WebhookNotifier,
    render,
)
from monitor.config import ConfigError, parse_config, redacted

TOKEN = "s3cr3t-T0KEN-abcdef123456"  # what a real webhook URL carries in its path
HEADER_SECRET = "Bearer hdr-secret-98765"
REPO = Path(__file__).resolve().parents[2]

HOSTILE_BODY = (
    "@everyone @here <script>alert(1)</script> **bold** __under__ ~~gone~~ ||spoiler|| `code`\n"
    "[link](http://evil.example/steal) <@123456789> <t:1700000000:R> {{DATE(2017-02-14T06:08:39Z, SHORT)}}\n"
    "# heading\n- item\n1. first\n> quoted"
)
HOSTILE_TITLE = "**Title** [x](http://evil.example)"
HOSTILE_AUTHOR = "<@&987654321> _eve_"


# --------------------------------------------------------------------------------------------------------------
# A local receiver


class Receiver:
    """An HTTP server on 127.0.0.1 (OS-assigned port) that records every POST and answers as told."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._answers: deque[tuple[int, dict[str, str], bytes]] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    answer = receiver._answers.popleft() if receiver._answers else (204, {}, b"")
                status, headers, payload = answer
                if status == 0:  # stall: never answer until the receiver closes (client timeouts)
                    receiver._release.wait(30)
                    return
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/webhooks/1234/{TOKEN}"

    def answer(self, status: int, body: bytes | dict[str, Any] = b"", headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode() if isinstance(body, dict) else body
        headers = dict(headers or {})
        if isinstance(body, dict):
            headers.setdefault("Content-Type", "application/json")
        with self._lock:
            self._answers.append((status, headers, payload))

    def stall(self) -> None:
        with self._lock:
            self._answers.append((0, {}, b""))

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index]["body"].decode("utf-8"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def notifier(url: str, fmt: str = "json", **extra: Any) -> WebhookNotifier:
    config = WebhookConfig.model_validate({"kind": "webhook", "url": url, "format": fmt, "min_interval": 0, **extra})
    made = build_notifier("hook", config)
    assert isinstance(made, WebhookNotifier)
    return made


@pytest.fixture
def hostile(alert: Alert) -> Alert:
    return replace(alert, body=HOSTILE_BODY, title=HOSTILE_TITLE, author=HOSTILE_AUTHOR, why="text negative: **never** again",
                   draft_reply="Sorry [click](http://evil.example) @everyone")


def assert_secret_free(error: DeliveryError, url: str) -> None:
    for shown in (str(error), repr(error), error.message):
        assert url not in shown and TOKEN not in shown and "hdr-secret" not in shown, shown


# --------------------------------------------------------------------------------------------------------------
# format: json


# The review object of the conftest alert (with two topics), as every JSON type carries it.
REVIEW_42 = {
    "review_id": 42,
    "business": "Acme Bakery",
    "source": "acme-trustpilot",
    "site": "Trustpilot",
    "url": "https://www.trustpilot.com/reviews/65a1b2c3d4",
    "rating": 1,
    "author": "Jane D.",
    "title": "Awful morning",
    "body": "Cold bread and rude staff. Never again.",
    "published_at": "2026-11-20T14:03:00+00:00",
    "language": "en",
    "label": "neg",
    "score": -0.91,
    "severity": "high",
    "why": "1★ rating",
    "draft_reply": "Hi Jane, we are sorry about your visit. Could you write to us at hello@acme.example?",
    "topics": ["staff", "bread"],
}


def test_json_body_is_the_documented_schema(receiver, alert):
    result = notifier(receiver.url, headers={"Authorization": HEADER_SECRET}).send(replace(alert, topics=("staff", "bread")))
    assert result.remote_id is None
    [request] = receiver.requests
    assert request["path"] == f"/api/webhooks/1234/{TOKEN}"
    assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert request["headers"]["Authorization"] == HEADER_SECRET
    assert receiver.json() == {"repwatch_version": 1, "type": "alert", **REVIEW_42}


def test_json_body_is_strict_json_with_nulls_for_what_is_missing(receiver, alert):
    odd = replace(alert, rating=float("nan"), score=float("inf"), author=None, title=None, published_at=None,
                  language=None, draft_reply=None, url="javascript:alert(1)", body="lone \ud800 surrogate")
    notifier(receiver.url).send(odd)
    raw = receiver.requests[0]["body"].decode("utf-8")  # valid UTF-8, and no NaN/Infinity tokens below
    data = json.loads(raw, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert data["rating"] is None and data["score"] is None and data["url"] is None
    assert data["author"] is None and data["published_at"] is None and data["draft_reply"] is None
    assert data["body"] == "lone \ufffd surrogate"


def test_json_keeps_review_text_as_found(receiver, hostile):
    notifier(receiver.url).send(hostile)
    assert receiver.json()["body"] == HOSTILE_BODY  # data, not markup: the consumer escapes it where it shows it


# --------------------------------------------------------------------------------------------------------------
# format: discord, checked as Discord checks a webhook message


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def check_discord(message: dict[str, Any]) -> dict[str, Any]:
    """Discord's documented limits and our allowed_mentions promise; returns the one embed."""
    assert message["allowed_mentions"] == {"parse": []}
    assert utf16(message.get("content", "")) <= 2000
    [embed] = message["embeds"]
    assert utf16(embed["title"]) <= DISCORD_TITLE_MAX
    assert utf16(embed["description"]) <= DISCORD_DESCRIPTION_MAX
    assert len(embed["fields"]) <= DISCORD_FIELDS_MAX
    for field in embed["fields"]:
        assert 0 < utf16(field["name"]) <= DISCORD_FIELD_NAME_MAX and 0 < utf16(field["value"]) <= DISCORD_FIELD_VALUE_MAX
    assert utf16(embed["footer"]["text"]) <= DISCORD_FOOTER_MAX
    total = utf16(embed["title"]) + utf16(embed["description"]) + utf16(embed["footer"]["text"])
    total += sum(utf16(f["name"]) + utf16(f["value"]) for f in embed["fields"])
    assert total <= DISCORD_EMBED_TOTAL_MAX
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


def test_discord_message_has_one_embed_with_link_fields_and_no_pings(receiver, alert):
    notifier(receiver.url, "discord").send(alert)
    embed = check_discord(receiver.json())
    assert embed["url"] == alert.url
    assert embed["title"] == "🟠 1★ review · Acme Bakery · Trustpilot"
    assert embed["description"] == "**Awful morning**\n\nCold bread and rude staff. Never again."
    assert embed["timestamp"] == "2026-11-20T14:03:00+00:00"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Rating"] == "★☆☆☆☆ 1/5" and fields["Author"] == "Jane D." and fields["Why it fired"] == "1★ rating"


def test_discord_hostile_review_text_arrives_inert(receiver, hostile):
    notifier(receiver.url, "discord").send(hostile)
    message = receiver.json()
    embed = check_discord(message)
    description = embed["description"]
    body = description.split("\n\n", 1)[1]
    assert unescape(body) == HOSTILE_BODY  # every character still shows, as typed
    assert unescaped(body, "*_~`|<>[]@") == []  # ...but none of them opens Markdown, a link or a mention
    for line in body.splitlines():
        assert not re.match(r"(#|-|>|\d+\.)", line), line  # no heading, list or quote can start
    assert "**bold**" not in description and "[link](" not in description and "@everyone" not in description.replace("\\@", "")
    title = description.split("\n\n", 1)[0]
    assert title.startswith("**") and title.endswith("**") and unescaped(title[2:-2], "*_~`|<>[]@") == []
    everything = [message["content"], embed["title"], *(f["value"] for f in embed["fields"])]
    for text in everything:
        assert unescaped(text, "*_~`|<>[]@") == [], text
    assert embed["footer"]["text"] == "repwatch · source acme-trustpilot · review #42"  # footer: plain text, no escapes


def test_discord_limits_hold_for_a_huge_review(receiver, alert):
    huge = replace(alert, body="💥*[x]" * 5000, title="T" * 1000, author="A" * 1000, why="w" * 3000, draft_reply="d" * 3000,
                   site="S" * 500)
    notifier(receiver.url, "discord").send(huge)
    embed = check_discord(receiver.json())
    assert embed["description"].endswith("… [cut: the full review is behind the title link]")
    assert "\\" != embed["description"].split("…")[0][-1]  # a cut never leaves a lone backslash


def test_discord_message_id_is_kept_when_the_url_asks_for_it(receiver, alert):
    receiver.answer(200, {"id": "1180000000000000000", "channel_id": "1"})
    assert notifier(receiver.url + "?wait=true", "discord").send(alert).remote_id == "1180000000000000000"


# --------------------------------------------------------------------------------------------------------------
# format: teams


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
    if kind == "TextBlock":
        return [e["text"] for e in card["body"] if e["type"] == "TextBlock"]
    return [run["text"] for e in card["body"] if e["type"] == "RichTextBlock" for run in e["inlines"]]


def test_teams_card_has_the_review_and_an_open_review_button(receiver, alert):
    notifier(receiver.url, "teams").send(alert)
    card = check_teams(receiver.json())
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open review", "url": alert.url}]
    runs = texts(card, "TextRun")
    assert alert.body in runs and "Jane D." in runs and "“Awful morning”" in runs and alert.draft_reply in runs
    assert "🟠 1★ review · Acme Bakery · Trustpilot" in runs


def test_teams_hostile_text_never_reaches_a_markdown_textblock(receiver, hostile):
    notifier(receiver.url, "teams").send(hostile)
    card = check_teams(receiver.json())
    # TextBlock renders Markdown in Teams; only repwatch's own fixed words may go there.
    assert texts(card, "TextBlock") == ["Why it fired", "Draft reply, not posted: edit it and post it on the site yourself"]
    runs = texts(card, "TextRun")
    # TextRun is documented as never rendering Markdown: the review shows as typed, except the {{DATE()}} function.
    expected = HOSTILE_BODY.replace("{{", "{\u200b{")
    assert expected in runs
    assert not any("{{" in run for run in runs)
    assert card["actions"][0]["url"] == hostile.url


def test_teams_without_a_usable_link_has_no_button(receiver, alert):
    notifier(receiver.url, "teams").send(replace(alert, url="javascript:alert(1)"))
    card = check_teams(receiver.json())
    assert "actions" not in card
    assert "No usable link: the review URL is not http(s)" in texts(card, "TextBlock")


def test_teams_payload_stays_under_the_size_limit_for_a_maximal_review(alert):
    # 3 bytes per character in UTF-8: the worst case for the byte limit with text cut by character count.
    cjk = "評" * 20000
    body = render(replace(alert, body=cjk, draft_reply=cjk, why=cjk, title=cjk, author=cjk), "teams")
    assert len(body) <= TEAMS_PAYLOAD_MAX
    check_teams(json.loads(body))


def test_teams_legacy_connector_failure_inside_a_200_is_an_error(receiver, alert):
    receiver.answer(200, b"Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 "
                         b"with ContextId tcid=0,server=msgapi-production")
    with pytest.raises(DeliveryError) as caught:
        notifier(receiver.url, "teams").send(alert)
    assert caught.value.retryable and caught.value.retry_after == 30
    assert "Teams reported 429" in str(caught.value)


# --------------------------------------------------------------------------------------------------------------
# Notices: updates, reminders, spikes and flood summaries, in every format

UNTIL = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
# Review text at its worst: Markdown, links, mentions in three syntaxes, a lone surrogate, 10,000 characters.
HOSTILE_LONG = HOSTILE_BODY + "\n<!channel> <!here> [click](http://evil.example) lone \ud800 surrogate\n" + "@everyone " * 1000
SUMMARY_TAIL = re.compile(r"…and (\d+) more \(`repwatch reviews --negative`\)$")


@pytest.fixture
def tagged(alert: Alert) -> Alert:
    return replace(alert, topics=("staff", "bread"))


@pytest.fixture
def other(alert: Alert) -> Alert:
    return replace(alert, review_id=43, severity="critical", rating=2, title=None, body="Waited an hour for a coffee.",
                   url="https://www.trustpilot.com/reviews/43", author=None)


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


KINDS = ["update", "update-open", "reminder", "spike", "summary"]


def test_json_notice_types_are_the_documented_schema(receiver, tagged, other):
    hook = notifier(receiver.url)
    notices = all_notices(tagged, other)
    for kind in KINDS:
        assert hook.send_notice(notices[kind]).remote_id is None
    update, still_open, reminder, spike, summary = (receiver.json(i) for i in range(5))
    assert update == {"repwatch_version": 1, "type": "update", "review": REVIEW_42 | {"rating": 4},
                      "changes": ["rating 1★ → 4★", "the business replied on the site"], "settled": True}
    assert still_open["settled"] is False and still_open["review"] == REVIEW_42
    assert reminder == {"repwatch_version": 1, "type": "reminder", "review": REVIEW_42, "waiting_hours": 53.33, "deadline_hours": 48.0}
    examples = spike.pop("examples")
    assert spike == {"repwatch_version": 1, "type": "spike", "business": "Acme Bakery", "source": "acme-trustpilot",
                     "site": "Trustpilot", "count": 9, "mean": 1.3, "sd": 0.84, "threshold": 3.82, "until": "2026-11-21T09:00:00+00:00"}
    assert [e["review_id"] for e in examples] == [43, 42, 42, 42] and examples[1] == REVIEW_42  # all of them, not three
    items = summary.pop("items")
    assert summary == {"repwatch_version": 1, "type": "summary", "count": 3, "by_business": {"Acme Bakery": 3},
                       "by_severity": {"critical": 1, "high": 2}}
    assert [i["review_id"] for i in items] == [43, 100, 101] and items[0]["author"] is None and items[1]["topics"] == ["staff", "bread"]


def test_json_spike_over_all_sources_has_null_source_and_site(receiver, alert):
    spike = Spike("Acme Bakery", None, None, count=4, mean=0.0, sd=0.0, threshold=3, until=UNTIL, examples=())
    notifier(receiver.url).send_notice(spike)
    data = receiver.json()
    assert data["source"] is None and data["site"] is None and data["examples"] == [] and data["threshold"] == 3


def test_json_summary_carries_every_item_since_webhooks_get_no_separate_alerts(receiver, alert, other):
    summary = all_notices(alert, other, many=400)["summary"]
    notifier(receiver.url).send_notice(summary)
    assert len(receiver.json()["items"]) == 400


def test_the_route_target_changes_nothing_a_webhook_sends(receiver, alert):
    hook = notifier(receiver.url, "discord")
    hook.send(alert)
    hook.send(alert, Target(channel="#elsewhere", mention="<!channel>", thread="1700000000.000100"))
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]  # nobody pinged, no channel or thread to pick


# Discord --------------------------------------------------------------------------------------------------------


def discord_texts(message: dict[str, Any]) -> list[str]:
    [embed] = message["embeds"]
    return [message["content"], embed["title"], embed["description"], *(f["name"] for f in embed["fields"]),
            *(f["value"] for f in embed["fields"])]


def test_discord_update_says_what_changed_and_when_nothing_is_left_to_do(receiver, alert, other):
    notices = all_notices(alert, other)
    hook = notifier(receiver.url, "discord")
    hook.send_notice(notices["update"])
    hook.send_notice(notices["update-open"])
    settled, still_open = check_discord(receiver.json(0)), check_discord(receiver.json(1))
    assert settled["title"] == "✅ Settled: 🟠 4★ review · Acme Bakery · Trustpilot" and settled["url"] == alert.url
    assert settled["description"] == "• rating 1★ → 4★\n• the business replied on the site\n\n**No action needed.**"
    assert receiver.json(0)["content"] == "✅ 4★ review of Acme Bakery on Trustpilot: no action needed"
    assert still_open["title"].startswith("🔄 Changed: ") and "No action needed" not in still_open["description"]
    assert still_open["description"].endswith("**Still open:** reply on the site if nobody has yet.")
    fields = {f["name"]: f["value"] for f in still_open["fields"]}
    assert fields["The review now"] == "Awful morning: Cold bread and rude staff. Never again." and fields["Rating"] == "★☆☆☆☆ 1/5"


def test_a_long_list_of_changes_shows_ten_and_counts_the_rest(receiver, alert, other):
    changes = tuple(f"change {n}" for n in range(12))
    update = all_notices(alert, other, changes=changes)["update"]
    notifier(receiver.url, "discord").send_notice(update)
    notifier(receiver.url, "teams").send_notice(update)
    lines = check_discord(receiver.json(0))["description"].splitlines()
    assert lines[:11] == [*(f"• change {n}" for n in range(10)), "…and 2 more changes"]
    card = check_teams(receiver.json(1))
    assert "• change 9" in texts(card, "TextRun") and "• change 10" not in texts(card, "TextRun")
    assert "…and 2 more changes" in texts(card, "TextBlock")


def test_discord_reminder_says_how_long_it_has_waited(receiver, alert, other):
    notifier(receiver.url, "discord").send_notice(all_notices(alert, other)["reminder"])
    message = receiver.json()
    embed = check_discord(message)
    assert embed["title"] == "⏰ Still unanswered: 🟠 1★ review · Acme Bakery · Trustpilot" and embed["url"] == alert.url
    assert embed["description"] == ("**No reply on the site after 2 days 5 h; the reply deadline is 48 h (overdue by 5 h).**\n\n"
                                    "“Awful morning”\nCold bread and rude staff. Never again.")
    assert message["content"] == "⏰ 1★ review of Acme Bakery on Trustpilot still has no reply after 2 days 5 h"
    assert any(f["name"].startswith("Draft reply") and f["value"] == alert.draft_reply.replace("@", "\\@") for f in embed["fields"])


def test_discord_spike_shows_the_count_against_the_usual_and_three_examples(receiver, alert, other):
    notifier(receiver.url, "discord").send_notice(all_notices(alert, other)["spike"])
    message = receiver.json()
    embed = check_discord(message)
    assert embed["title"] == "📈 Negative review spike · Acme Bakery · Trustpilot" and "url" not in embed
    assert embed["description"] == ("**9 negative reviews in the 24 h up to 2026-11-21 09:00 UTC.**\n"
                                    "Usually 1.3 ± 0.8 a day over the 7 days before; the alert threshold is 3.8.")
    assert embed["timestamp"] == "2026-11-21T09:00:00+00:00" and embed["footer"]["text"] == "repwatch · source acme-trustpilot"
    assert [f["name"] for f in embed["fields"]] == ["Example 1: 🔴 2★", "Example 2: 🟠 1★", "Example 3: 🟠 1★"]
    assert embed["fields"][0]["value"] == ("Acme Bakery · Trustpilot\n“Waited an hour for a coffee.”\n"
                                           "[Open review](https://www.trustpilot.com/reviews/43)")
    assert message["content"] == "📈 9 negative reviews of Acme Bakery in 24 h (usually 1.3 a day)"


def test_discord_summary_lists_what_fits_then_and_n_more(receiver, alert, other):
    hook = notifier(receiver.url, "discord")
    hook.send_notice(all_notices(alert, other)["summary"])
    small = check_discord(receiver.json())
    assert small["title"] == "📣 3 new review alerts in one run" and small["color"] == 0xD7263D  # the worst severity's colour
    assert small["description"].splitlines() == [
        "• **🔴 2★ review · Acme Bakery · Trustpilot** — “Waited an hour for a coffee.” [Open review](https://www.trustpilot.com/reviews/43)",
        *[("• **🟠 1★ review · Acme Bakery · Trustpilot** — “Awful morning: Cold bread and rude staff. Never again.” "
           "[Open review](https://www.trustpilot.com/reviews/65a1b2c3d4)")] * 2,
    ]
    assert {f["name"]: f["value"] for f in small["fields"]} == {"By severity": "🔴 1 critical · 🟠 2 high", "By business": "Acme Bakery: 3"}
    assert receiver.json()["content"] == "📣 3 new review alerts in one run: 🔴 1 critical · 🟠 2 high"

    hook.send_notice(all_notices(alert, other, many=300)["summary"])
    big = check_discord(receiver.json())
    lines = big["description"].splitlines()
    shown = sum(line.startswith("• ") for line in lines)
    assert 10 < shown < 300 and (more := SUMMARY_TAIL.match(lines[-1])) and int(more.group(1)) == 300 - shown


def test_discord_summary_counts_alerts_it_was_not_given(receiver, alert, other):
    summary = replace(all_notices(alert, other)["summary"], count=40)
    notifier(receiver.url, "discord").send_notice(summary)
    assert check_discord(receiver.json())["description"].splitlines()[-1] == "…and 37 more (`repwatch reviews --negative`)"


# Teams ----------------------------------------------------------------------------------------------------------


def run_blocks(card: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return [e["inlines"] for e in card["body"] if e["type"] == "RichTextBlock"]


def links(card: dict[str, Any]) -> list[str]:
    return [run["selectAction"]["url"] for runs in run_blocks(card) for run in runs if "selectAction" in run]


def test_teams_update_says_what_changed_and_when_nothing_is_left_to_do(receiver, alert, other):
    notices = all_notices(alert, other)
    hook = notifier(receiver.url, "teams")
    hook.send_notice(notices["update"])
    hook.send_notice(notices["update-open"])
    settled, still_open = check_teams(receiver.json(0)), check_teams(receiver.json(1))
    assert texts(settled, "TextBlock") == ["What changed", "No action needed."]
    runs = texts(settled, "TextRun")
    assert runs[0] == "✅ Settled: 🟠 4★ review · Acme Bakery · Trustpilot"
    assert "• rating 1★ → 4★" in runs and "• the business replied on the site" in runs
    assert "“Awful morning: Cold bread and rude staff. Never again.”" in runs
    assert settled["actions"] == [{"type": "Action.OpenUrl", "title": "Open review", "url": alert.url}]
    assert texts(still_open, "TextBlock") == ["What changed", "Still open: reply on the site if nobody has yet."]


def test_teams_reminder_says_how_long_it_has_waited(receiver, alert, other):
    notifier(receiver.url, "teams").send_notice(all_notices(alert, other)["reminder"])
    card = check_teams(receiver.json())
    assert texts(card, "TextBlock") == ["No reply on the site after 2 days 5 h; the reply deadline is 48 h (overdue by 5 h).",
                                        "Draft reply, not posted: edit it and post it on the site yourself"]
    runs = texts(card, "TextRun")
    assert runs[0] == "⏰ Still unanswered: 🟠 1★ review · Acme Bakery · Trustpilot" and alert.body in runs and alert.draft_reply in runs
    assert card["actions"][0]["url"] == alert.url


def test_teams_spike_shows_the_count_against_the_usual_and_three_examples(receiver, alert, other):
    notifier(receiver.url, "teams").send_notice(all_notices(alert, other)["spike"])
    card = check_teams(receiver.json())
    assert texts(card, "TextBlock") == ["9 negative reviews in the 24 h up to 2026-11-21 09:00 UTC.",
                                        "Usually 1.3 ± 0.8 a day over the 7 days before; the alert threshold is 3.8.", "Examples"]
    assert texts(card, "TextRun")[0] == "📈 Negative review spike · Acme Bakery · Trustpilot"
    assert links(card) == [other.url, alert.url, alert.url]


def test_teams_summary_lists_what_fits_then_and_n_more(receiver, alert, other):
    hook = notifier(receiver.url, "teams")
    hook.send_notice(all_notices(alert, other)["summary"])
    card = check_teams(receiver.json())
    runs = texts(card, "TextRun")
    assert runs[:5] == ["📣 3 new review alerts in one run", "By severity: ", "🔴 1 critical · 🟠 2 high", "By business: ", "Acme Bakery: 3"]
    assert runs[5:8] == ["🔴 2★ review · Acme Bakery · Trustpilot", " — “Waited an hour for a coffee.”", " Open review"]
    assert links(card) == [other.url, alert.url, alert.url] and "more (" not in "".join(runs)

    hook.send_notice(all_notices(alert, other, many=300)["summary"])
    assert len(receiver.requests[-1]["body"]) <= TEAMS_PAYLOAD_MAX
    card = check_teams(receiver.json())
    shown = len(links(card))
    assert 10 < shown < 300
    assert [run["text"] for run in run_blocks(card)[-1]] == [f"…and {300 - shown} more (", "repwatch reviews --negative", ")"]


# Hostile text, every type in every format -------------------------------------------------------------------------


@pytest.fixture
def hostile_notices(alert, other) -> dict[str, Notice]:
    bad = replace(alert, body=HOSTILE_LONG, title=HOSTILE_TITLE + " <!channel>", author=HOSTILE_AUTHOR, why="**never** @here",
                  draft_reply="Sorry [click](http://evil.example) @everyone", business="Acme @everyone *Bakery*", site="Trust_pilot <!here>")
    changes = ("title now: [click](http://evil.example) @everyone", "body edited: " + HOSTILE_LONG)
    notices = all_notices(bad, replace(other, body=HOSTILE_LONG), changes=changes * 20, many=60)
    notices["spike"] = replace(notices["spike"], business=bad.business, site=bad.site)
    return notices


OUR_MARKUP = re.compile(r"\[Open review\]\(https://www\.trustpilot\.com/reviews/[0-9a-z]+\)|\*\*|`repwatch reviews --negative`"
                        r"|… \[cut: the full review is behind the title link\]$")


@pytest.mark.parametrize("kind", KINDS)
def test_discord_hostile_notice_arrives_inert_and_bounded(receiver, hostile_notices, kind):
    notifier(receiver.url, "discord").send_notice(hostile_notices[kind])
    message = receiver.json()
    check_discord(message)  # allowed_mentions parse [] and every Discord limit
    for text in discord_texts(message):
        ours_removed = OUR_MARKUP.sub("", text)
        assert unescaped(ours_removed, "*_~`|<>[]@") == [], text[:300]
        for line in ours_removed.splitlines():
            assert not re.match(r"\s*(#|-|>|\d+\.)", line), line  # no heading, list or quote starts in review text
        assert "\ud800" not in text and "[click](" not in text and "@everyone" not in text.replace("\\@", "")


@pytest.mark.parametrize("kind", KINDS)
def test_teams_hostile_notice_keeps_review_text_out_of_markdown(receiver, hostile_notices, kind):
    notifier(receiver.url, "teams").send_notice(hostile_notices[kind])
    assert len(receiver.requests[0]["body"]) <= TEAMS_PAYLOAD_MAX
    card = check_teams(receiver.json())
    # TextBlocks render Markdown: only repwatch's own words, never a name or a review's text.
    for block in texts(card, "TextBlock"):
        assert not re.search(r"[@<>*_\[\]]|evil|Acme|Trust", block), block
    assert "[click]" not in card["fallbackText"] and "{{" not in card["fallbackText"]
    runs = texts(card, "TextRun")
    assert not any("{{" in run or "\ud800" in run for run in runs)
    assert all(url.startswith("https://www.trustpilot.com/") for url in links(card))


@pytest.mark.parametrize("kind", KINDS)
def test_json_hostile_notice_is_strict_json_with_text_as_found(receiver, hostile_notices, kind):
    notifier(receiver.url).send_notice(hostile_notices[kind])
    data = json.loads(receiver.requests[0]["body"].decode("utf-8"), parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    reviews = [data["review"]] if "review" in data else data.get("examples", []) + data.get("items", [])
    expected = HOSTILE_LONG.replace("\ud800", "\ufffd")
    assert reviews and all(r["body"] == expected or r["review_id"] == 43 for r in reviews)


def test_teams_notices_stay_under_the_size_limit_for_maximal_text(alert, other):
    # 3 UTF-8 bytes per character: the worst case for Teams' byte limit with text cut by characters.
    cjk = "評" * 20000
    worst = replace(alert, body=cjk, draft_reply=cjk, why=cjk, title=cjk, author=cjk, business=cjk[:500], site=cjk[:500],
                    url="https://example.com/" + "a" * 2900)
    for notice in all_notices(worst, worst, changes=(cjk,) * 30, many=100).values():
        body = render(notice, "teams")
        assert len(body) <= TEAMS_PAYLOAD_MAX
        check_teams(json.loads(body))
        check_discord(json.loads(render(notice, "discord")))


# --------------------------------------------------------------------------------------------------------------
# Errors: what is retried, for how long, and what the message never says


@pytest.mark.parametrize(("answer", "retryable", "retry_after", "words"), [
    ((500, b"oops", {}), True, None, "HTTP 500: the endpoint is having trouble, will retry"),
    ((503, b"", {}), True, None, "HTTP 503"),
    ((429, b"", {"Retry-After": "7"}), True, 7, "rate limited, retry in 7s"),
    ((429, {"message": "You are being rate limited.", "retry_after": 1.5, "global": False}, {}), True, 1.5, "retry in 1.5s"),
    # Both: the header (always seconds) wins over Discord's JSON value (milliseconds on some API versions).
    ((429, {"retry_after": 1500}, {"Retry-After": "2"}), True, 2, "retry in 2s"),
    ((429, b"", {}), True, 30, "retry in 30s"),
    ((404, {"message": "Unknown Webhook", "code": 10015}, {}), False, None,
     "HTTP 404 (Unknown Webhook, code 10015): the webhook URL is wrong or the webhook was deleted"),
    ((401, b"", {}), False, None, "HTTP 401: the webhook's token is wrong or was revoked"),
    ((400, {"message": "Cannot send an empty message", "code": 50006}, {}), False, None, "a bug in repwatch"),
    ((301, b"", {"Location": f"https://elsewhere.example/{TOKEN}"}), False, None, "redirects are not followed"),
])
def test_http_answers_map_to_retryable_or_permanent(receiver, alert, answer, retryable, retry_after, words):
    status, body, headers = answer
    receiver.answer(status, body, headers)
    with pytest.raises(DeliveryError) as caught:
        notifier(receiver.url, "discord", headers={"Authorization": HEADER_SECRET}).send(alert)
    error = caught.value
    assert error.retryable is retryable and error.retry_after == retry_after
    assert str(error).startswith("Discord webhook (127.0.0.1): ") and words in str(error)
    assert_secret_free(error, receiver.url)
    assert len(receiver.requests) == 1  # nothing retried or followed behind the outbox's back


def test_json_endpoint_hints_are_about_its_own_setup(receiver, alert):
    receiver.answer(403, b"forbidden")
    with pytest.raises(DeliveryError) as caught:
        notifier(receiver.url, headers={"Authorization": HEADER_SECRET}).send(alert)
    assert str(caught.value) == "webhook (127.0.0.1): HTTP 403: access refused; check `headers` (e.g. Authorization)"


def test_an_endpoint_echoing_secrets_back_does_not_leak_them(receiver, alert):
    receiver.answer(400, {"message": f"bad request to {receiver.url} with {HEADER_SECRET} and /api/webhooks/1234/{TOKEN}"})
    with pytest.raises(DeliveryError) as caught:
        notifier(receiver.url, headers={"Authorization": HEADER_SECRET}).send(alert)
    assert "[redacted]" in str(caught.value)
    assert_secret_free(caught.value, receiver.url)


def test_a_timeout_is_retryable_and_secret_free(receiver, alert):
    receiver.stall()
    with pytest.raises(DeliveryError) as caught:
        notifier(receiver.url, timeout=0.3).send(alert)
    assert caught.value.retryable and "no answer within 0.3s" in str(caught.value)
    assert_secret_free(caught.value, receiver.url)


def test_a_refused_connection_is_retryable_and_secret_free(alert):
    with Receiver() as gone:
        url = gone.url
    # The port was the receiver's a moment ago and nothing listens on it now.
    with pytest.raises(DeliveryError) as caught:
        notifier(url, headers={"X-Api-Key": "hdr-secret-key-1"}).send(alert)
    assert caught.value.retryable and "could not reach the endpoint" in str(caught.value)
    assert_secret_free(caught.value, url)


def test_a_url_httpx_rejects_only_when_connecting_is_a_permanent_secret_free_error(alert):
    url = f"http://a..b/{TOKEN}"
    with pytest.raises(DeliveryError) as caught:
        notifier(url).send(alert)
    assert not caught.value.retryable and "the URL cannot be used" in str(caught.value)
    assert_secret_free(caught.value, url)


def test_sends_are_paced_per_url_with_the_format_default(receiver, alert, monkeypatch):
    turns: list[tuple[str, float]] = []
    monkeypatch.setattr(webhook_module.PACER, "wait_turn", lambda key, interval: turns.append((key, interval)))
    config = WebhookConfig.model_validate({"kind": "webhook", "url": receiver.url, "format": "discord"})
    build_notifier("hook", config).send(alert)
    build_notifier("hook", config.model_copy(update={"min_interval": 0.5})).send(alert)
    assert [interval for _, interval in turns] == [2.0, 0.5]
    assert turns[0][0] == turns[1][0] and TOKEN not in turns[0][0]


# --------------------------------------------------------------------------------------------------------------
# Config


def config_problems(notifier_yaml: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"notifiers:\n  hook:\n{notifier_yaml}", env={})
    return caught.value.problems


@pytest.mark.parametrize(("entry", "message"), [
    ("    kind: webhook\n    url: ftp://files.example/s3cr3t-x\n", "notifiers.hook.url: must be an http(s) URL"),
    ("    kind: webhook\n    url: https://h.example:99999/s3cr3t-x\n", "notifiers.hook.url: is not a URL (check the host and port)"),
    ("    kind: webhook\n    url: https://\u2603.example/s3cr3t-x\n", "notifiers.hook.url: is not a URL httpx can use"),
    ("    kind: webhook\n    url: https://h.example/s3cr3t-x\n    format: slack\n", "notifiers.hook.format:"),
    ("    kind: webhook\n    url: https://h.example/s3cr3t-x\n    headers: {Content-Type: text/plain}\n",
     "'Content-Type' is set by repwatch"),
    ("    kind: webhook\n    url: https://h.example/s3cr3t-x\n    headers: {X-Key: \"s3cr3t-x\\r\\nEvil: 1\"}\n",
     "the value of 'X-Key' must be one line of printable ASCII"),
    ("    kind: webhook\n    url: https://h.example/s3cr3t-x\n    headers: {\"Bad Name\": x}\n", "'Bad Name' is not a valid header name"),
    ("    kind: webhook\n    url: https://h.example/s3cr3t-x\n    colour: red\n", "notifiers.hook.colour: unknown key"),
])
def test_config_errors_name_the_key_and_never_show_secrets(entry, message):
    problems = config_problems(entry)
    assert any(message in p for p in problems), problems
    assert not any("s3cr3t" in p for p in problems), problems


def test_config_show_redacts_url_and_header_values():
    config = parse_config(f"notifiers:\n  hook:\n    kind: webhook\n    url: https://h.example/{TOKEN}\n"
                          f"    headers: {{Authorization: \"{HEADER_SECRET}\"}}\n", env={})
    shown = json.dumps(redacted(config))
    assert TOKEN not in shown and "hdr-secret" not in shown and "Authorization" in shown


# --------------------------------------------------------------------------------------------------------------
# The command: repwatch alerts test webhook | email


def repwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, check=False)


def webhook_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("notifiers:\n  hook:\n    kind: webhook\n    url: ${TEST_WEBHOOK_URL}\n    format: discord\n"
                    "    headers: {Authorization: \"${TEST_WEBHOOK_AUTH}\"}\n", encoding="utf-8")
    return path


def test_alerts_test_webhook_sends_one_sample(tmp_path, receiver):
    result = repwatch("alerts", "test", "webhook", "--config", str(webhook_config(tmp_path)),
                      env={"TEST_WEBHOOK_URL": receiver.url, "TEST_WEBHOOK_AUTH": HEADER_SECRET})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hook: sent"
    [request] = receiver.requests
    assert request["headers"]["Authorization"] == HEADER_SECRET
    embed = check_discord(receiver.json())
    assert "test alert" in embed["description"]


def test_alerts_test_webhook_failure_is_one_secret_free_line(tmp_path, receiver):
    receiver.answer(404, {"message": "Unknown Webhook", "code": 10015})
    result = repwatch("alerts", "test", "webhook", "--config", str(webhook_config(tmp_path)),
                      env={"TEST_WEBHOOK_URL": receiver.url, "TEST_WEBHOOK_AUTH": HEADER_SECRET})
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("hook: FAILED: Discord webhook (127.0.0.1): HTTP 404")
    assert TOKEN not in result.stderr + result.stdout and "hdr-secret" not in result.stderr + result.stdout


class Mailbox:
    def __init__(self, data_reply: str | None = None):
        self.data_reply = data_reply
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return self.data_reply or "250 Message accepted for delivery"


class LocalSMTP(Controller):
    """aiosmtpd on 127.0.0.1 at an OS-assigned port (its start-up probe connects to `port`, so learn it first)."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtp() -> Iterator[Any]:
    started: list[LocalSMTP] = []

    def start(mailbox: Mailbox) -> LocalSMTP:
        controller = LocalSMTP(mailbox, hostname="127.0.0.1", port=0, ready_timeout=10)
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


def email_config(tmp_path: Path, port: int | None) -> Path:
    path = tmp_path / "config.yaml"
    digest = (f"digest:\n  from: repwatch <digest@acme.example>\n  to: [owner@acme.example, \"Manager <manager@acme.example>\"]\n"
              f"  smtp: {{host: 127.0.0.1, port: {port}, security: none, timeout: 5}}\n") if port else ""
    path.write_text(digest or "notifiers: {}\n", encoding="utf-8")
    return path


def test_alerts_test_email_sends_through_the_digest_smtp_settings(tmp_path, smtp):
    mailbox = Mailbox()
    result = repwatch("alerts", "test", "email", "--config", str(email_config(tmp_path, smtp(mailbox).port)))
    assert result.returncode == 0, result.stderr
    port = result.stdout.strip().rsplit(":", 1)[1]
    assert result.stdout.strip() == f"email: sent a test email to owner@acme.example, manager@acme.example via SMTP 127.0.0.1:{port}"
    [(recipients, raw)] = mailbox.received
    assert recipients == ["owner@acme.example", "manager@acme.example"]
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "repwatch test email" and message["Auto-Submitted"] == "auto-generated"
    assert "test email from repwatch" in message.get_content()


def test_alerts_test_email_failure_is_one_line_and_exit_1(tmp_path, smtp):
    result = repwatch("alerts", "test", "email", "--config", str(email_config(tmp_path, smtp(Mailbox("554 5.7.1 spam")).port)))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("repwatch: test email not sent: SMTP 127.0.0.1:") and line.endswith(": 554 5.7.1 spam")


def test_alerts_test_email_without_a_digest_section_says_so(tmp_path):
    result = repwatch("alerts", "test", "email", "--config", str(email_config(tmp_path, None)))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "has no digest: section" in line
