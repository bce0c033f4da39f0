"""SlackNotifier through the real slack-sdk against the local Slack-shaped server: payloads, inertness, errors."""
from __future__ import annotations

import dataclasses
import json
import socket
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError

from alerts import NOTIFIERS, Alert, DeliveryError, Notifier, SendResult, build_notifier, notifier_config_types
from alerts import slack as slack_module
from alerts.http import DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER, Pacer, parse_retry_after
from alerts.slack import SlackConfig, SlackNotifier, build_alert
from alerts.text import safe_review_url
from demo.slack_receiver import SlackReceiver, block_errors

BOT_TOKEN = "xoxb-1111-2222-SecretTokenValue"
HOSTILE = "<!channel> <!here> <@U123ABC> <http://evil.example|click me> *bold* _it_ ~s~ `code` & co\n> quoted"


def bot(receiver: SlackReceiver, **overrides: Any) -> SlackNotifier:
    config = {"kind": "slack", "token": receiver.expected_token, "channel": "#reviews", "api_url": receiver.api_url,
              "min_interval": 0, **overrides}
    return build_notifier("team", SlackConfig.model_validate(config))  # type: ignore[return-value]


def hook(receiver: SlackReceiver, url: str | None = None, **overrides: Any) -> SlackNotifier:
    config = {"kind": "slack", "webhook_url": url or receiver.webhook_url(), "min_interval": 0, **overrides}
    return build_notifier("hook", SlackConfig.model_validate(config))  # type: ignore[return-value]


def texts(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every text object in the blocks."""
    found = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            found.append(block["text"])
        found += block.get("fields") or []
        for element in block.get("elements") or []:
            found.append(element["text"] if element.get("type") == "button" else element)
    return found


def block(blocks: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(b for b in blocks if b["type"] == kind)


# -- delivery ---------------------------------------------------------------------------------------------------


def test_bot_token_send_arrives_with_the_expected_blocks(slack: SlackReceiver, alert: Alert) -> None:
    result = bot(slack).send(alert)

    [message] = slack.messages
    assert result == SendResult(remote_id=f"{message['channel']}/{message['ts']}")
    assert message["kind"] == "post"
    blocks = message["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "section", "section", "context", "context", "context",
                                          "section", "actions", "context"]
    assert block(blocks, "header")["text"] == {"type": "plain_text", "text": "🟠 1★ review · Acme Bakery · Trustpilot",
                                               "emoji": False}
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert fields == ["Rating\n★☆☆☆☆ 1/5", "Severity\nhigh", "Site\nTrustpilot", "Business\nAcme Bakery",
                      "Author\nJane D.", "Published\n2026-11-20 14:03 UTC", "Sentiment\nneg (-0.91)", "Language\nen"]
    assert blocks[2]["text"]["text"] == "“Awful morning”"
    assert blocks[3]["text"]["text"] == "Cold bread and rude staff. Never again."
    assert blocks[4]["elements"][1]["text"] == "1★ rating"
    assert blocks[5]["elements"][0]["text"] == "📋 Status: new: nobody has taken it"
    assert "not posted" in blocks[6]["elements"][0]["text"]
    assert blocks[7]["text"]["text"].startswith("Hi Jane")
    buttons = block(blocks, "actions")["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Take it", "Replied", "Resolved", "Not a complaint", "Snooze 1 day",
                                                    "Edit draft", "Open review"]
    assert {b.get("value") for b in buttons[:6]} == {"42:0"}  # the review and the state the message shows
    assert buttons[-1]["url"] == alert.url
    assert message["text"].startswith("🟠 1★ review of Acme Bakery on Trustpilot (high): Awful morning Cold bread")
    assert "<!here>" not in message["text"]  # no mention configured, and not critical anyway
    # slack-sdk sent it as Slack wants it: JSON, bearer token, links not unfurled
    [request] = slack.requests
    assert request["path"] == "/api/chat.postMessage"
    assert request["headers"]["authorization"] == f"Bearer {slack.expected_token}"
    assert request["body"]["unfurl_links"] is False


def test_webhook_send_arrives_with_the_same_blocks(slack: SlackReceiver, alert: Alert) -> None:
    assert hook(slack).send(alert) == SendResult(remote_id=None)

    [message] = slack.messages
    assert message["kind"] == "webhook" and message["channel"] == "#webhook"
    assert message["blocks"] == build_alert(alert)["blocks"]


def test_send_test_posts_a_sample(slack: SlackReceiver) -> None:
    bot(slack).send_test()
    assert "Example Bakery" in slack.messages[0]["blocks"][0]["text"]["text"]


def test_mention_only_on_critical_alerts(slack: SlackReceiver, alert: Alert) -> None:
    notifier = bot(slack, mention="<!here>")
    notifier.send(alert)  # severity high
    notifier.send(dataclasses.replace(alert, severity="critical"))

    high, critical = slack.messages
    assert "<!here>" not in high["text"] and all("<!here>" not in t["text"] for t in texts(high["blocks"]))
    assert critical["text"].startswith("<!here> ")
    assert critical["blocks"][0]["text"] == {"type": "mrkdwn", "text": "<!here> critical review: please look now"}


# -- untrusted text ---------------------------------------------------------------------------------------------


def test_hostile_review_arrives_inert_and_within_limits(slack: SlackReceiver, alert: Alert) -> None:
    hostile = dataclasses.replace(
        alert, author=HOSTILE, title=HOSTILE, site="Trust<b>pilot</b> & *co*", body=HOSTILE + "x" * 10_000,
        why=f'text negative: "{HOSTILE}"', draft_reply=HOSTILE, severity="critical",
    )
    bot(slack, mention="<@U999OPS>").send(hostile)

    [message] = slack.messages  # accepted by the receiver's Block Kit checks
    escaped = ("&lt;!channel&gt; &lt;!here&gt; &lt;@U123ABC&gt; &lt;http://evil.example|click me&gt; "
               "*bold* _it_ ~s~ `code` &amp; co\n&gt; quoted")
    note = "… [cut: the full review is behind “Open review”]"
    body_text = message["blocks"][4]["text"]
    assert body_text == {"type": "plain_text", "emoji": False,
                         "text": escaped + "x" * (3000 - len(escaped) - len(note)) + note}
    assert len(body_text["text"]) == 3000
    assert message["blocks"][1]["text"]["text"] == "🔴 1★ review · Acme Bakery · Trust&lt;b&gt;pilot&lt;/b&gt; &amp; *co*"

    objects = texts(message["blocks"])
    # Review text only ever travels in plain_text (Slack parses no mrkdwn, mention or link there) ...
    ours = {"<@U999OPS> critical review: please look now", "*Why it fired*",
            "*Draft reply, not posted:* edit it and post it on the site yourself",
            f"<{alert.url}|Open the review on the site>"}
    assert {o["text"] for o in objects if o["type"] == "mrkdwn"} == ours
    # ... and even there no Slack control sequence can form.
    for obj in objects:
        if obj["type"] == "plain_text":
            assert "<" not in obj["text"] and ">" not in obj["text"]
    # The notification text (mrkdwn) pings only the operator's mention and links only to the validated URL.
    fallback = message["text"]
    assert fallback.startswith("<@U999OPS> ") and fallback.count("<") == 1
    assert "*\u200bbold*\u200b" in fallback and "_\u200bit_\u200b" in fallback and "`\u200bcode`\u200b" in fallback
    assert "&amp; co &gt; quoted" in fallback  # one line: the quote marker is never at a line start


def test_emoji_heavy_review_fits_even_if_slack_counts_utf16(slack: SlackReceiver, alert: Alert) -> None:
    bot(slack).send(dataclasses.replace(alert, body="😡" * 5000, author="😡" * 3000, business="🥖" * 200))

    [message] = slack.messages  # the receiver counts UTF-16 units, so each emoji weighs 2
    body = message["blocks"][3]["text"]["text"]
    assert body.startswith("😡😡") and body.endswith("“Open review”]")
    assert len(body.encode("utf-16-le")) // 2 <= 3000


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "file:///etc/passwd", "//evil.example/x", "data:text/html,hi", "", "https://ok\x1b[2J.example/"],
)
def test_review_url_that_is_not_plain_http_is_omitted(slack: SlackReceiver, alert: Alert, url: str) -> None:
    bot(slack).send(dataclasses.replace(alert, url=url))

    blocks = slack.messages[0]["blocks"]
    assert all("url" not in element for b in blocks if b["type"] == "actions" for element in b["elements"])
    assert blocks[-1]["elements"][0]["text"] == "No usable link: the review URL is not http(s)"


def test_review_url_cannot_break_out_of_a_slack_link() -> None:
    assert safe_review_url("https://x.example/r?a=1|evil>b<c d") == "https://x.example/r?a=1%7Cevil%3Eb%3Cc%20d"
    assert safe_review_url("https://bücher.example/r/1") == "https://bücher.example/r/1"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(text="\ud800 lone surrogate, as json.loads makes from a page's JSON-LD", short="\udfff", rating=None)
@given(
    text=st.text(alphabet=st.characters(), min_size=0, max_size=4000),  # surrogates and controls included
    short=st.text(alphabet=st.characters(), min_size=0, max_size=400),
    rating=st.none() | st.floats(allow_nan=True, allow_infinity=True),
)
def test_any_review_gives_a_message_slack_accepts(text: str, short: str, rating: float | None) -> None:
    alert = Alert(review_id=1, business=short, source=short, site=short, url=short, body=text * 3, label=short,
                  severity=short, why=text, rating=rating, author=short, title=text, draft_reply=text)
    message = build_alert(alert, mention="<!here>")
    assert block_errors(message["blocks"]) == []
    assert len(message["text"]) <= 40_000
    json.dumps(message, ensure_ascii=False).encode("utf-8")  # sendable


# -- errors -----------------------------------------------------------------------------------------------------


def test_server_error_is_retryable(slack: SlackReceiver, alert: Alert) -> None:
    slack.fail_next(1, status=500)
    with pytest.raises(DeliveryError) as caught:
        bot(slack).send(alert)
    assert caught.value.retryable and caught.value.retry_after is None
    assert "HTTP 500" in str(caught.value)
    assert slack.messages == []


def test_rate_limit_is_retryable_after_what_slack_says(slack: SlackReceiver, alert: Alert) -> None:
    slack.rate_limit_next(1, retry_after="2")
    with pytest.raises(DeliveryError) as caught:
        bot(slack).send(alert)
    assert caught.value.retryable and caught.value.retry_after == 2


def test_rate_limit_with_unreadable_retry_after_falls_back_to_the_default(slack: SlackReceiver, alert: Alert) -> None:
    slack.rate_limit_next(1, retry_after="soon")  # slack-sdk's own RateLimitErrorRetryHandler crashes on this
    with pytest.raises(DeliveryError) as caught:
        bot(slack).send(alert)
    assert caught.value.retryable and caught.value.retry_after == DEFAULT_RETRY_AFTER


def test_webhook_rate_limit_is_an_error_not_a_silent_ok(slack: SlackReceiver, alert: Alert) -> None:
    slack.rate_limit_next(1, retry_after="3")  # WebhookClient returns this 429 without raising
    with pytest.raises(DeliveryError) as caught:
        hook(slack).send(alert)
    assert caught.value.retryable and caught.value.retry_after == 3
    assert slack.messages == []


def test_webhook_server_error_is_retryable(slack: SlackReceiver, alert: Alert) -> None:
    slack.fail_next(1, status=503)
    with pytest.raises(DeliveryError) as caught:
        hook(slack).send(alert)
    assert caught.value.retryable


def test_unknown_webhook_is_permanent_and_its_url_stays_secret(slack: SlackReceiver, alert: Alert) -> None:
    url = slack.base_url + "services/T999/B999/TopSecretHookPart"
    with pytest.raises(DeliveryError) as caught:
        hook(slack, url=url).send(alert)
    err = caught.value
    assert not err.retryable and "HTTP 404 no_service" in str(err)
    for shown in (str(err), repr(err), str(err.args)):
        assert "TopSecretHookPart" not in shown and url not in shown


def test_invalid_auth_is_permanent_and_the_token_stays_secret(alert: Alert) -> None:
    with SlackReceiver(token="xoxb-the-right-one") as receiver:
        with pytest.raises(DeliveryError) as caught:
            bot(receiver, token=BOT_TOKEN).send(alert)
    err = caught.value
    assert not err.retryable and "invalid_auth" in str(err)
    for shown in (str(err), repr(err), str(err.args), str(err.__cause__), str(err.__context__)):
        assert BOT_TOKEN not in shown and "SecretTokenValue" not in shown


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "invalid_blocks", "is_archived"])
def test_setup_and_payload_errors_are_permanent(slack: SlackReceiver, alert: Alert, error: str) -> None:
    slack.fail_next(1, status=200, error=error)
    with pytest.raises(DeliveryError) as caught:
        bot(slack).send(alert)
    assert not caught.value.retryable and error in str(caught.value)


def test_transient_slack_error_at_http_200_is_retryable(slack: SlackReceiver, alert: Alert) -> None:
    slack.fail_next(1, status=200, error="service_unavailable")
    with pytest.raises(DeliveryError) as caught:
        bot(slack).send(alert)
    assert caught.value.retryable


def test_connection_refused_is_retryable(alert: Alert) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = SlackConfig(kind="slack", token=BOT_TOKEN, channel="#r", api_url=f"http://127.0.0.1:{port}/api/",
                         min_interval=0)
    with pytest.raises(DeliveryError) as caught:
        SlackNotifier("t", config).send(alert)
    assert caught.value.retryable and "connection refused" in str(caught.value)


def test_timeout_is_retryable(slack: SlackReceiver, alert: Alert) -> None:
    slack.stall_next(1)
    with pytest.raises(DeliveryError) as caught:
        bot(slack, timeout=0.2).send(alert)
    assert caught.value.retryable and "no answer within 0.2s" in str(caught.value)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("2", 2.0), (" 7 ", 7.0), ("1.5", 1.5), ("Sat, 21 Nov 2026 12:00:30 GMT", 30.0), ("Sat, 21 Nov 2026 11:00:00 GMT", 0.0),
     ("soon", DEFAULT_RETRY_AFTER), ("", DEFAULT_RETRY_AFTER), (None, DEFAULT_RETRY_AFTER), ("nan", DEFAULT_RETRY_AFTER),
     ("inf", DEFAULT_RETRY_AFTER), ("-5", 0.0), ("99999999", MAX_RETRY_AFTER), (["4"], 4.0)],
)
def test_parse_retry_after(header: Any, seconds: float) -> None:
    now = datetime(2026, 11, 21, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after(header, now=lambda: now) == seconds


# -- pacing -----------------------------------------------------------------------------------------------------


def test_pacer_spaces_sends_to_one_destination() -> None:
    clock = [100.0]
    slept: list[float] = []
    pacer = Pacer(clock=lambda: clock[0], sleep=slept.append)

    pacer.wait_turn("a", 1.0)
    pacer.wait_turn("a", 1.0)  # reserved 101.0
    pacer.wait_turn("b", 1.0)  # another channel does not wait
    clock[0] = 105.0
    pacer.wait_turn("a", 1.0)  # long after: no wait
    assert slept == [1.0]


def test_sends_on_one_channel_wait_their_turn(slack: SlackReceiver, alert: Alert, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(slack_module, "PACER", Pacer(clock=lambda: 0.0, sleep=slept.append))
    notifier = bot(slack, min_interval=1.0)
    notifier.send(alert)
    notifier.send(alert)
    assert slept == [1.0] and len(slack.messages) == 2


# -- config and registry ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"token": BOT_TOKEN, "channel": "#r", "webhook_url": "https://hooks.slack.com/services/T/B/X"}, "not both"),
        ({}, "give either `token` + `channel`"),
        ({"token": BOT_TOKEN}, "`channel` is required"),
        ({"webhook_url": "https://hooks.slack.com/services/T/B/X", "channel": "#r"}, "remove `channel`"),
        ({"token": "SecretTokenValue", "channel": "#r"}, "starts with xoxb-"),
        ({"webhook_url": "hooks.slack.com/services/T/B/SecretTokenValue"}, "must be an http(s) URL"),
        ({"token": BOT_TOKEN, "channel": "#r", "mention": "@here"}, "a bare @here does not ping"),
        ({"token": BOT_TOKEN, "channel": "#r", "extra": 1}, "Extra inputs are not permitted"),
    ],
)
def test_config_errors_are_clear_and_keep_secrets(config: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SlackConfig.model_validate({"kind": "slack", **config})
    assert expected in str(caught.value)
    assert "SecretTokenValue" not in str(caught.value)


def test_config_defaults_and_normalisation() -> None:
    config = SlackConfig(kind="slack", token=BOT_TOKEN, channel="#r", api_url="http://127.0.0.1:9/api", mention=" <!here> ")
    assert config.api_url == "http://127.0.0.1:9/api/" and config.mention == "<!here>"
    assert config.timeout == 10 and config.min_interval == 1.0
    assert BOT_TOKEN not in repr(config)


def test_registry() -> None:
    assert NOTIFIERS["slack"] is SlackNotifier
    assert SlackConfig in notifier_config_types()
    assert SlackNotifier.__doc__ and "webhook_url" in SlackNotifier.__doc__
    class Unknown(BaseModel):
        kind: str = "nope"

    with pytest.raises(ValueError, match="unknown notifier kind 'nope'"):
        build_notifier("x", Unknown())


def test_duplicate_kind_or_loose_config_fails_at_class_creation() -> None:
    with pytest.raises(TypeError, match="registered twice"):
        class AnotherSlack(Notifier):  # noqa: F811
            """Help."""

            kind: ClassVar[str] = "slack"
            Config: ClassVar[type[BaseModel]] = SlackConfig

    class LooseConfig(BaseModel):
        kind: Literal["loose"]

    with pytest.raises(TypeError, match="extra='forbid'"):
        class Loose(Notifier):
            """Help."""

            kind: ClassVar[str] = "loose"
            Config: ClassVar[type[BaseModel]] = LooseConfig

    class WrongKind(BaseModel):
        model_config = ConfigDict(extra="forbid")
        kind: Literal["other"]

    with pytest.raises(TypeError, match="Literal"):
        class Mismatch(Notifier):
            """Help."""

            kind: ClassVar[str] = "mismatch"
            Config: ClassVar[type[BaseModel]] = WrongKind

    assert set(NOTIFIERS) >= {"slack"} and not {"loose", "mismatch"} & set(NOTIFIERS)
