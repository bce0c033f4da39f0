"""The local Slack-shaped server: answers as Slack does, rejects what Slack rejects, renders safely for a terminal."""
from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from demo.slack_receiver import SlackReceiver, block_errors, render_message

# Blocks-only posts are sent on purpose here, to reach the receiver's checks; slack-sdk warns about each.
pytestmark = pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")


def client(receiver: SlackReceiver, token: str | None = None) -> WebClient:
    return WebClient(token=token or receiver.expected_token, base_url=receiver.api_url, retry_handlers=[])


def api_error(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as caught:
        call()
    return caught.value.response.data


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def section(text: str, kind: str = "plain_text") -> dict[str, Any]:
    return {"type": "section", "text": {"type": kind, "text": text}}


def test_post_message_answers_like_slack_and_is_recorded(slack: SlackReceiver) -> None:
    response = client(slack).chat_postMessage(channel="#reviews", text="hello", blocks=[section("hi")], thread_ts="1.2")

    assert response.status_code == 200 and response["ok"] is True
    assert response["channel"].startswith("C") and response["message"]["text"] == "hello"
    [message] = slack.messages
    assert message == {"kind": "post", "channel": response["channel"], "ts": response["ts"], "text": "hello",
                       "blocks": [section("hi")], "thread_ts": "1.2"}


def test_form_encoded_post_and_update(slack: SlackReceiver) -> None:
    web = client(slack)
    posted = web.api_call("chat.postMessage", params={"channel": "C0123ABCD", "text": "v1",
                                                      "blocks": json.dumps([section("one")])})
    assert posted["channel"] == "C0123ABCD"
    updated = web.chat_update(channel="C0123ABCD", ts=posted["ts"], text="v2")
    assert updated["ts"] == posted["ts"]
    assert [(m["kind"], m["text"]) for m in slack.messages] == [("post", "v1"), ("update", "v2")]
    assert api_error(lambda: web.chat_update(channel="C0123ABCD", ts="9.9", text="x"))["error"] == "message_not_found"


def test_auth(slack: SlackReceiver) -> None:
    assert client(slack).auth_test()["user_id"] == "U000"
    assert api_error(lambda: client(slack, token="xoxb-wrong").auth_test())["error"] == "invalid_auth"
    assert api_error(lambda: WebClient(base_url=slack.api_url, retry_handlers=[]).auth_test())["error"] == "not_authed"


def test_any_bot_token_is_accepted_when_none_is_configured() -> None:
    with SlackReceiver() as receiver:
        assert client(receiver, token="xoxb-anything").auth_test()["ok"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"channel": "#r", "blocks": [header("x" * 151)]}, "invalid_blocks"),
        ({"channel": "#r", "blocks": [section("x" * 3001)]}, "invalid_blocks"),
        ({"channel": "#r", "blocks": [{"type": "section", "fields": [{"type": "plain_text", "text": "x" * 2001}]}]},
         "invalid_blocks"),
        ({"channel": "#r", "blocks": [{"type": "section", "fields": [{"type": "plain_text", "text": "x"}] * 11}]},
         "invalid_blocks"),
        ({"channel": "#r", "blocks": [section("x")] * 51}, "invalid_blocks"),
        ({"channel": "#r", "blocks": [{"type": "banner", "text": "x"}]}, "invalid_blocks"),
        ({"channel": "#r", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "*x*"}}]}, "invalid_blocks"),
        ({"channel": "#r", "blocks": [section("")]}, "invalid_blocks"),
        ({"channel": "#r", "blocks": [{"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Go"}, "url": "https://x/" + "a" * 3000}]}]},
         "invalid_blocks"),
        ({"channel": "#r", "text": "x" * 40_001}, "msg_too_long"),
        ({"channel": "#r"}, "no_text"),
        ({"channel": "", "text": "x"}, "channel_not_found"),
    ],
)
def test_payloads_slack_would_reject_are_rejected(slack: SlackReceiver, kwargs: dict[str, Any], error: str) -> None:
    data = api_error(lambda: client(slack).chat_postMessage(**kwargs))
    assert data["ok"] is False and data["error"] == error
    assert slack.messages == []


def test_invalid_blocks_says_where(slack: SlackReceiver) -> None:
    data = api_error(lambda: client(slack).chat_postMessage(channel="#r", blocks=[section("ok"), header("x" * 151)]))
    assert data["errors"] == ["must be less than 151 characters [json-pointer:/blocks/1/text/text]"]


def test_the_limits_themselves_are_accepted() -> None:
    blocks = [header("x" * 150), section("x" * 3000),
              {"type": "section", "fields": [{"type": "plain_text", "text": "x" * 2000}] * 10}]
    assert block_errors(blocks + [section("x")] * 47) == []


def test_known_channels_only() -> None:
    with SlackReceiver(token="xoxb-t", channels={"#reviews"}) as receiver:
        assert api_error(lambda: client(receiver).chat_postMessage(channel="#other", text="x"))["error"] == "channel_not_found"
        assert client(receiver).chat_postMessage(channel="#reviews", text="x")["ok"]


def test_webhook_answers_like_slack(slack: SlackReceiver) -> None:
    url = slack.webhook_url("T1/B1/abc", channel="#alerts")
    good = WebhookClient(url).send(text="hi", blocks=[section("x")])
    assert (good.status_code, good.body) == (200, "ok")
    assert slack.messages[0]["kind"] == "webhook" and slack.messages[0]["channel"] == "#alerts"

    empty = WebhookClient(url).send_dict({"text": ""})
    assert (empty.status_code, empty.body) == (400, "no_text")
    bad = WebhookClient(url).send(blocks=[header("x" * 151)])
    assert (bad.status_code, bad.body) == (400, "invalid_blocks")
    gone = WebhookClient(slack.base_url + "services/T1/B1/nope").send(text="hi")
    assert (gone.status_code, gone.body) == (404, "no_service")
    request = urllib.request.Request(url, data=b"{not json", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert (caught.value.code, caught.value.read()) == (400, b"invalid_payload")
    assert len(slack.messages) == 1


def test_faults_apply_to_the_next_n_requests_only(slack: SlackReceiver) -> None:
    slack.rate_limit_next(1, retry_after="7")
    slack.fail_next(1, status=502)
    web = client(slack)
    with pytest.raises(SlackApiError) as limited:
        web.auth_test()
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert limited.value.response.data == {"ok": False, "error": "ratelimited"}
    with pytest.raises(SlackApiError) as failed:
        web.auth_test()
    assert failed.value.response.status_code == 502
    assert web.auth_test()["ok"]
    assert [r["status"] for r in slack.requests] == [429, 502, 200]


def test_concurrent_posts_are_all_recorded(slack: SlackReceiver) -> None:
    def post(n: int) -> None:
        for i in range(5):
            client(slack).chat_postMessage(channel="#r", text=f"{n}-{i}")  # noqa: B023

    threads = [threading.Thread(target=post, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(slack.messages) == 30 and len({m["ts"] for m in slack.messages}) == 30


def test_render_message_reads_like_slack_and_is_terminal_safe() -> None:
    message = {
        "kind": "post", "channel": "C1", "ts": "1.000001", "text": "fallback",
        "blocks": [
            header("🔴 1★ review · Acme"),
            {"type": "section", "fields": [{"type": "plain_text", "text": "Rating\n★☆☆☆☆ 1/5"},
                                           {"type": "plain_text", "text": "Site\nTrust\x1b[31mpilot"}]},
            section("bad &lt;!channel&gt; &amp; \x1b]0;pwned\x07title\x1b[2J\u202eevil\rline"),
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "*Why it fired*"},
                                             {"type": "mrkdwn", "text": "<https://x.example/r|Open> <!here>"}]},
            {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open review"},
                                              "url": "https://x.example/r"}]},
        ],
    }
    shown = render_message(message)

    assert "🔴 1★ review · Acme" in shown
    assert "Rating: ★☆☆☆☆ 1/5" in shown and "Site: Trustpilot" in shown
    assert "bad <!channel> & titleevil\n│ line" in shown  # Slack shows the decoded text; control sequences are gone
    assert "Why it fired  · Open (https://x.example/r) @here" in shown
    assert "[ Open review ] → https://x.example/r" in shown
    assert not any(ch in shown for ch in "\x1b\x07\r\u202e")


def test_render_message_without_blocks_shows_text() -> None:
    shown = render_message({"kind": "webhook", "channel": "#w", "ts": "1.1", "text": "plain &amp; simple", "blocks": None})
    assert "plain & simple" in shown
