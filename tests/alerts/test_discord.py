"""Discord notifier against a real local HTTP server: embeds as Discord checks them, escaping, notices, errors."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest

import alerts.discord as discord_module
import alerts.http as http_module
from alerts.base import DeliveryError, Target, build_notifier
from alerts.discord import DiscordConfig, DiscordNotifier
from tests.alerts.samples import (
    HEADER_SECRET,
    HOSTILE_BODY,
    KINDS,
    all_notices,
    assert_secret_free,
    check_discord,
    unescape,
    unescaped,
)
from tests.alerts.servers import TOKEN

SUMMARY_TAIL = re.compile(r"…and (\d+) more \(`repwatch reviews --negative`\)$")


def discord(url: str, **extra: Any) -> DiscordNotifier:
    made = build_notifier("chat", DiscordConfig.model_validate({"kind": "discord", "url": url, "min_interval": 0, **extra}))
    assert isinstance(made, DiscordNotifier)
    return made


# --------------------------------------------------------------------------------------------------------------
# Alerts

def test_discord_message_has_one_embed_with_link_fields_and_no_pings(receiver, alert):
    discord(receiver.url).send(alert)
    embed = check_discord(receiver.json())
    assert embed["url"] == alert.url
    assert embed["title"] == "🟠 1★ review · Acme Bakery · Trustpilot"
    assert embed["description"] == "**Awful morning**\n\nCold bread and rude staff. Never again."
    assert embed["timestamp"] == "2026-11-20T14:03:00+00:00"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Rating"] == "★☆☆☆☆ 1/5" and fields["Author"] == "Jane D." and fields["Why it fired"] == "1★ rating"


def test_discord_hostile_review_text_arrives_inert(receiver, hostile):
    discord(receiver.url).send(hostile)
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
    discord(receiver.url).send(huge)
    embed = check_discord(receiver.json())
    assert embed["description"].endswith("… [cut: the full review is behind the title link]")
    assert "\\" != embed["description"].split("…")[0][-1]  # a cut never leaves a lone backslash


def test_discord_message_id_is_kept_when_the_url_asks_for_it(receiver, alert):
    receiver.answer(200, {"id": "1180000000000000000", "channel_id": "1"})
    assert discord(receiver.url + "?wait=true").send(alert).remote_id == "1180000000000000000"


def test_the_route_target_changes_nothing_a_discord_webhook_sends(receiver, alert):
    hook = discord(receiver.url)
    hook.send(alert)
    hook.send(alert, Target(channel="#elsewhere", mention="<!channel>", thread="1700000000.000100"))
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]  # nobody pinged, no channel or thread to pick


# --------------------------------------------------------------------------------------------------------------
# Notices

def discord_texts(message: dict[str, Any]) -> list[str]:
    [embed] = message["embeds"]
    return [message["content"], embed["title"], embed["description"], *(f["name"] for f in embed["fields"]),
            *(f["value"] for f in embed["fields"])]


def test_discord_update_says_what_changed_and_when_nothing_is_left_to_do(receiver, alert, other):
    notices = all_notices(alert, other)
    hook = discord(receiver.url)
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
    discord(receiver.url).send_notice(update)
    lines = check_discord(receiver.json(0))["description"].splitlines()
    assert lines[:11] == [*(f"• change {n}" for n in range(10)), "…and 2 more changes"]


def test_discord_reminder_says_how_long_it_has_waited(receiver, alert, other):
    discord(receiver.url).send_notice(all_notices(alert, other)["reminder"])
    message = receiver.json()
    embed = check_discord(message)
    assert embed["title"] == "⏰ Still unanswered: 🟠 1★ review · Acme Bakery · Trustpilot" and embed["url"] == alert.url
    assert embed["description"] == ("**No reply on the site after 2 days 5 h; the reply deadline is 48 h (overdue by 5 h).**\n\n"
                                    "“Awful morning”\nCold bread and rude staff. Never again.")
    assert message["content"] == "⏰ 1★ review of Acme Bakery on Trustpilot still has no reply after 2 days 5 h"
    assert any(f["name"].startswith("Draft reply") and f["value"] == alert.draft_reply.replace("@", "\\@") for f in embed["fields"])


def test_discord_spike_shows_the_count_against_the_usual_and_three_examples(receiver, alert, other):
    discord(receiver.url).send_notice(all_notices(alert, other)["spike"])
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
    hook = discord(receiver.url)
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
    discord(receiver.url).send_notice(summary)
    assert check_discord(receiver.json())["description"].splitlines()[-1] == "…and 37 more (`repwatch reviews --negative`)"


OUR_MARKUP = re.compile(r"\[Open review\]\(https://www\.trustpilot\.com/reviews/[0-9a-z]+\)|\*\*|`repwatch reviews --negative`"
                        r"|… \[cut: the full review is behind the title link\]$")


@pytest.mark.parametrize("kind", KINDS)
def test_discord_hostile_notice_arrives_inert_and_bounded(receiver, hostile_notices, kind):
    discord(receiver.url).send_notice(hostile_notices[kind])
    message = receiver.json()
    check_discord(message)  # allowed_mentions parse [] and every Discord limit
    for text in discord_texts(message):
        ours_removed = OUR_MARKUP.sub("", text)
        assert unescaped(ours_removed, "*_~`|<>[]@") == [], text[:300]
        for line in ours_removed.splitlines():
            assert not re.match(r"\s*(#|-|>|\d+\.)", line), line  # no heading, list or quote starts in review text
        assert "\ud800" not in text and "[click](" not in text and "@everyone" not in text.replace("\\@", "")


def test_discord_notices_stay_within_limits_for_maximal_text(alert):
    cjk = "評" * 20000
    worst = replace(alert, body=cjk, draft_reply=cjk, why=cjk, title=cjk, author=cjk, business=cjk[:500], site=cjk[:500],
                    url="https://example.com/" + "a" * 2900)
    for notice in all_notices(worst, worst, changes=(cjk,) * 30, many=100).values():
        check_discord(json.loads(discord_module.render(notice)))


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
        discord(receiver.url, headers={"Authorization": HEADER_SECRET}).send(alert)
    error = caught.value
    assert error.retryable is retryable and error.retry_after == retry_after
    assert str(error).startswith("Discord webhook (127.0.0.1): ") and words in str(error)
    assert_secret_free(error, receiver.url)
    assert len(receiver.requests) == 1  # nothing retried or followed behind the outbox's back



def test_sends_are_paced_per_url_with_discords_default(receiver, alert, monkeypatch):
    turns: list[tuple[str, float]] = []
    monkeypatch.setattr(http_module.PACER, "wait_turn", lambda key, interval: turns.append((key, interval)))
    config = DiscordConfig.model_validate({"kind": "discord", "url": receiver.url})
    build_notifier("hook", config).send(alert)
    build_notifier("hook", config.model_copy(update={"min_interval": 0.5})).send(alert)
    assert [interval for _, interval in turns] == [2.0, 0.5]
    assert turns[0][0] == turns[1][0] and TOKEN not in turns[0][0]


