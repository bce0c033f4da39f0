"""Teams notifier against a real local HTTP server: Adaptive Cards as Teams reads them, inert text, notices, size."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest

import alerts.teams as teams_module
from alerts.base import DeliveryError, build_notifier
from alerts.teams import PAYLOAD_MAX, TeamsConfig, TeamsNotifier
from tests.alerts.samples import HOSTILE_BODY, KINDS, all_notices, check_teams, texts


def teams(url: str, **extra: Any) -> TeamsNotifier:
    made = build_notifier("team", TeamsConfig.model_validate({"kind": "teams", "url": url, "min_interval": 0, **extra}))
    assert isinstance(made, TeamsNotifier)
    return made


# --------------------------------------------------------------------------------------------------------------
# Alerts

def test_teams_card_has_the_review_and_an_open_review_button(receiver, alert):
    teams(receiver.url).send(alert)
    card = check_teams(receiver.json())
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open review", "url": alert.url}]
    runs = texts(card, "TextRun")
    assert alert.body in runs and "Jane D." in runs and "“Awful morning”" in runs and alert.draft_reply in runs
    assert "🟠 1★ review · Acme Bakery · Trustpilot" in runs


def test_teams_hostile_text_never_reaches_a_markdown_textblock(receiver, hostile):
    teams(receiver.url).send(hostile)
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
    teams(receiver.url).send(replace(alert, url="javascript:alert(1)"))
    card = check_teams(receiver.json())
    assert "actions" not in card
    assert "No usable link: the review URL is not http(s)" in texts(card, "TextBlock")


def test_teams_payload_stays_under_the_size_limit_for_a_maximal_review(alert):
    # 3 bytes per character in UTF-8: the worst case for the byte limit with text cut by character count.
    cjk = "評" * 20000
    body = teams_module.render(replace(alert, body=cjk, draft_reply=cjk, why=cjk, title=cjk, author=cjk))
    assert len(body) <= PAYLOAD_MAX
    check_teams(json.loads(body))


def test_teams_legacy_connector_failure_inside_a_200_is_an_error(receiver, alert):
    receiver.answer(200, b"Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 "
                         b"with ContextId tcid=0,server=msgapi-production")
    with pytest.raises(DeliveryError) as caught:
        teams(receiver.url).send(alert)
    assert caught.value.retryable and caught.value.retry_after == 30
    assert "Teams reported 429" in str(caught.value)


# --------------------------------------------------------------------------------------------------------------
# Notices



def run_blocks(card: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return [e["inlines"] for e in card["body"] if e["type"] == "RichTextBlock"]


def links(card: dict[str, Any]) -> list[str]:
    return [run["selectAction"]["url"] for runs in run_blocks(card) for run in runs if "selectAction" in run]


def test_teams_update_says_what_changed_and_when_nothing_is_left_to_do(receiver, alert, other):
    notices = all_notices(alert, other)
    hook = teams(receiver.url)
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


def test_a_long_list_of_changes_shows_ten_and_counts_the_rest(receiver, alert, other):
    changes = tuple(f"change {n}" for n in range(12))
    teams(receiver.url).send_notice(all_notices(alert, other, changes=changes)["update"])
    card = check_teams(receiver.json())
    assert "• change 9" in texts(card, "TextRun") and "• change 10" not in texts(card, "TextRun")
    assert "…and 2 more changes" in texts(card, "TextBlock")


def test_teams_reminder_says_how_long_it_has_waited(receiver, alert, other):
    teams(receiver.url).send_notice(all_notices(alert, other)["reminder"])
    card = check_teams(receiver.json())
    assert texts(card, "TextBlock") == ["No reply on the site after 2 days 5 h; the reply deadline is 48 h (overdue by 5 h).",
                                        "Draft reply, not posted: edit it and post it on the site yourself"]
    runs = texts(card, "TextRun")
    assert runs[0] == "⏰ Still unanswered: 🟠 1★ review · Acme Bakery · Trustpilot" and alert.body in runs and alert.draft_reply in runs
    assert card["actions"][0]["url"] == alert.url


def test_teams_spike_shows_the_count_against_the_usual_and_three_examples(receiver, alert, other):
    teams(receiver.url).send_notice(all_notices(alert, other)["spike"])
    card = check_teams(receiver.json())
    assert texts(card, "TextBlock") == ["9 negative reviews in the 24 h up to 2026-11-21 09:00 UTC.",
                                        "Usually 1.3 ± 0.8 a day over the 7 days before; the alert threshold is 3.8.", "Examples"]
    assert texts(card, "TextRun")[0] == "📈 Negative review spike · Acme Bakery · Trustpilot"
    assert links(card) == [other.url, alert.url, alert.url]


def test_teams_summary_lists_what_fits_then_and_n_more(receiver, alert, other):
    hook = teams(receiver.url)
    hook.send_notice(all_notices(alert, other)["summary"])
    card = check_teams(receiver.json())
    runs = texts(card, "TextRun")
    assert runs[:5] == ["📣 3 new review alerts in one run", "By severity: ", "🔴 1 critical · 🟠 2 high", "By business: ", "Acme Bakery: 3"]
    assert runs[5:8] == ["🔴 2★ review · Acme Bakery · Trustpilot", " — “Waited an hour for a coffee.”", " Open review"]
    assert links(card) == [other.url, alert.url, alert.url] and "more (" not in "".join(runs)

    hook.send_notice(all_notices(alert, other, many=300)["summary"])
    assert len(receiver.requests[-1]["body"]) <= PAYLOAD_MAX
    card = check_teams(receiver.json())
    shown = len(links(card))
    assert 10 < shown < 300
    assert [run["text"] for run in run_blocks(card)[-1]] == [f"…and {300 - shown} more (", "repwatch reviews --negative", ")"]



@pytest.mark.parametrize("kind", KINDS)
def test_teams_hostile_notice_keeps_review_text_out_of_markdown(receiver, hostile_notices, kind):
    teams(receiver.url).send_notice(hostile_notices[kind])
    assert len(receiver.requests[0]["body"]) <= PAYLOAD_MAX
    card = check_teams(receiver.json())
    # TextBlocks render Markdown: only repwatch's own words, never a name or a review's text.
    for block in texts(card, "TextBlock"):
        assert not re.search(r"[@<>*_\[\]]|evil|Acme|Trust", block), block
    assert "[click]" not in card["fallbackText"] and "{{" not in card["fallbackText"]
    runs = texts(card, "TextRun")
    assert not any("{{" in run or "\ud800" in run for run in runs)
    assert all(url.startswith("https://www.trustpilot.com/") for url in links(card))



def test_teams_notices_stay_under_the_size_limit_for_maximal_text(alert, other):
    # 3 UTF-8 bytes per character: the worst case for Teams' byte limit with text cut by characters.
    cjk = "評" * 20000
    worst = replace(alert, body=cjk, draft_reply=cjk, why=cjk, title=cjk, author=cjk, business=cjk[:500], site=cjk[:500],
                    url="https://example.com/" + "a" * 2900)
    for notice in all_notices(worst, worst, changes=(cjk,) * 30, many=100).values():
        body = teams_module.render(notice)
        assert len(body) <= PAYLOAD_MAX
        check_teams(json.loads(body))


