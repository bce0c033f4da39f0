"""The work buttons end to end: an alert goes out through the CLI, clicks arrive over Socket Mode (a local
WebSocket server speaking Slack's protocol, driven through slack-sdk's own client) or the signed request URL, the
alert is edited in place, the inbox shows who has the review; retries, replays and hostile payloads change nothing."""
from __future__ import annotations

import hashlib
import hmac
import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from demo.server import SiteServer
from demo.slack_receiver import SlackReceiver
from monitor.config import load_config_and_text
from monitor.listener import Listener
from monitor.service.pipeline import open_sessions
from monitor.service.slack_actions import SlackActions
from monitor.service.users import add_user, link_slack
from monitor.service.work import review_events
from tests.cli import run_cli, start_process
from tests.e2e.conftest import TOKEN, Setup, site_review, write_config

APP_TOKEN = "xapp-1-A0REPWATCH-1-s3cr3t"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ANA = "U0ANA1234"
STRANGER = "U0STRANGER"
ENV = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with SiteServer() as site, SlackReceiver(token=TOKEN, app_token=APP_TOKEN) as slack:
        config = write_config(tmp_path, site.url, slack.api_url)
        config.write_text(config.read_text() + textwrap.dedent("""
            slack_actions:
              app_token: ${SLACK_APP_TOKEN}
              signing_secret: ${SLACK_SIGNING_SECRET}
              allow: mapped_users
        """))
        setup = Setup(site, slack, config, tmp_path)
        setup.publish([site_review(1, 1, hours_ago=2)])
        assert setup.crawl().code == 0
        sessions = open_sessions(load_config_and_text(config)[0])
        add_user(sessions, "ana", "member", None)
        link_slack(sessions, "ana", ANA)
        yield setup


@pytest.fixture
def listener(setup: Setup) -> Iterator[Listener]:
    lines: list[str] = []
    listening = Listener(load_config_and_text(setup.config)[0], log=lines.append)
    listening.lines = lines  # type: ignore[attr-defined]
    listening.start()
    setup.slack.socket.wait_connected(1)
    yield listening
    listening.close()


def click(slack: SlackReceiver, alert: dict[str, Any], action: str, *, user: str = ANA, name: str = "ana.s",
          value: str | None = None, action_ts: str | None = None) -> dict[str, Any]:
    """A block_actions payload as Slack sends it for a click on one of the alert's buttons."""
    buttons = next(b for b in alert["blocks"] if b["type"] == "actions")["elements"]
    button = next((b for b in buttons if b.get("action_id") == action), {"action_id": action, "value": "1:0"})
    return {
        "type": "block_actions", "api_app_id": "A0REPWATCH", "token": "legacy-verification-token",
        "user": {"id": user, "username": name, "name": name, "team_id": "T000"},
        "container": {"type": "message", "message_ts": alert["ts"], "channel_id": alert["channel"], "is_ephemeral": False},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0", "team": {"id": "T000", "domain": "acme"},
        "channel": {"id": alert["channel"], "name": "reviews"}, "message": {"ts": alert["ts"], "blocks": alert["blocks"]},
        "response_url": slack.response_url(),
        "actions": [{"action_id": action, "block_id": "repwatch_work", "type": "button",
                     "text": {"type": "plain_text", "text": button.get("text", {}).get("text", "?")},
                     "value": value if value is not None else button["value"],
                     "action_ts": action_ts or f"{time.time():.6f}"}],
    }


def reviews(setup: Setup) -> list[dict[str, Any]]:
    result = setup.repwatch("reviews", "--format", "json")
    assert result.code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def trail(setup: Setup) -> list[tuple[str, str, str, str | None]]:
    sessions = open_sessions(load_config_and_text(setup.config)[0])
    return [(e.actor, e.via, e.action, e.after) for e in review_events(sessions, 1)]


def texts(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


def test_take_it_over_socket_mode_assigns_edits_the_alert_and_a_redelivery_changes_nothing(setup, listener):
    slack, socket = setup.slack, setup.slack.socket
    (alert,) = slack.messages
    assert '"Take it"' in texts(alert) and '"repwatch:take"' in texts(alert)

    payload = click(slack, alert, "repwatch:take")
    envelope = socket.send_interactive(payload)
    assert socket.wait_ack(envelope) == {"envelope_id": envelope}
    edited = slack.wait_for(2)[1]
    assert (edited["kind"], edited["ts"]) == ("update", alert["ts"])
    assert "taken by ana" in texts(edited) and '"Take it"' in texts(edited)  # the buttons stay
    assert '"1:2"' in texts(edited)  # the buttons now carry the state the message shows
    assert [(r["assignee"], r["status"]) for r in reviews(setup)] == [("ana", "assigned")]
    assert trail(setup) == [("ana", "slack", "assign", "ana"), ("ana", "slack", "status", "assigned")]

    # Slack delivers the same envelope again (it saw no acknowledgement): acknowledged, nothing changes
    socket.send_interactive(payload, envelope_id=envelope)
    socket.send_interactive(payload)  # and the same click in a new envelope
    while socket.ack_order.count(envelope) < 2 or len(socket.ack_order) < 3:
        socket.wait_ack(socket.ack_order[-1])
        with socket._cond:
            socket._cond.wait_for(lambda: socket.ack_order.count(envelope) >= 2 and len(socket.ack_order) >= 3, 10)
    assert len(trail(setup)) == 2 and len(slack.messages) == 2
    assert any("delivered again, already applied" in line for line in listener.lines)

    # Slack rotates the connection: the client reconnects by itself and the next click still arrives
    socket.disconnect()
    socket.wait_connected(2)
    resolved = socket.send_interactive(click(slack, {**edited, "channel": alert["channel"]}, "repwatch:resolved"))
    socket.wait_ack(resolved)
    messages = slack.wait_for(5)  # the edit, then the settled alert's own update: the edit and its thread reply
    assert [r["status"] for r in reviews(setup)] == ["resolved"]
    assert any(m["kind"] == "post" and m["thread_ts"] == alert["ts"] and "marked resolved by ana" in texts(m)
               for m in messages)


def test_hostile_payloads_get_a_clear_ephemeral_answer_and_change_nothing(setup, listener):
    slack, socket = setup.slack, setup.slack.socket
    (alert,) = slack.messages
    hostile = [
        (click(slack, alert, "repwatch:take", value="99999:0"), "no review #99999"),
        (click(slack, alert, "repwatch:take", value="1:0; DROP TABLE review"), "carries no review"),
        (click(slack, alert, "repwatch:delete_everything"), "unknown button"),
        (click(slack, alert, "repwatch:resolved", user=STRANGER, name="<!channel> mallory"), "only people linked"),
        ({"type": "block_actions", "actions": "nope", "user": {"id": ANA}, "response_url": slack.response_url()},
         "a click without an action"),
    ]
    for payload, _ in hostile:
        socket.wait_ack(socket.send_interactive(payload))
    socket.wait_ack(socket.send_interactive(["not", "an", "object"]))  # and one nobody can be told about
    answers = slack.wait_for(1 + len(hostile))[1:]
    assert sorted(a["kind"] for a in answers) == ["response"] * len(hostile)
    assert all(a["response_type"] == "ephemeral" for a in answers)
    for _, expected in hostile:
        assert any(expected in a["text"] for a in answers), expected
    assert [(r["assignee"], r["status"]) for r in reviews(setup)] == [(None, "new")]
    assert trail(setup) == []


def test_edit_draft_opens_a_modal_in_the_reviewers_language_and_saves_what_is_submitted(setup, listener):
    slack, socket = setup.slack, setup.slack.socket
    (alert,) = slack.messages
    socket.wait_ack(socket.send_interactive(click(slack, alert, "repwatch:draft")))
    with slack._stored:
        slack._stored.wait_for(lambda: slack.views, 10)
    (opened,) = slack.views
    view = opened["view"]
    box = view["blocks"][-1]["element"]
    assert view["callback_id"] == "repwatch:draft" and "language: en" in json.dumps(view)
    assert box["initial_value"].startswith(next(b for b in alert["blocks"] if b["type"] == "section"
                                                and "Reviewer" in json.dumps(b) and b.get("text"))["text"]["text"][:2]) \
        or box["initial_value"]
    submission = {
        "type": "view_submission", "user": {"id": ANA, "username": "ana.s"}, "team": {"id": "T000"},
        "view": {"id": "V0DRAFT1", "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
                 "hash": "1712345678.abc",
                 "state": {"values": {"draft": {"text": {"type": "plain_text_input", "value": "Dear Reviewer, we are sorry."}}}}},
    }
    envelope = socket.send_interactive(submission, accepts_response_payload=True)
    assert socket.wait_ack(envelope) == {"envelope_id": envelope}  # the modal closes
    edited = slack.wait_for(2)[1]
    assert edited["kind"] == "update" and "Dear Reviewer, we are sorry." in texts(edited)
    assert trail(setup)[-1] == ("ana", "slack", "draft", "Dear Reviewer, we are sorry.")

    empty = {**submission, "view": {**submission["view"], "id": "V0DRAFT2",
                                    "state": {"values": {"draft": {"text": {"value": "   "}}}}}}
    refused = socket.wait_ack(socket.send_interactive(empty, accepts_response_payload=True))
    assert refused["payload"]["response_action"] == "errors" and "empty" in refused["payload"]["errors"]["draft"]


def test_the_cli_listener_reconnects_and_a_cli_status_change_refreshes_the_alert(setup):
    slack, socket = setup.slack, setup.slack.socket
    listening = start_process("slack-listen", "--config", str(setup.config), env=ENV, cwd=setup.tmp)
    try:
        listening.wait_for("connected to Slack (connection 1)")
        (alert,) = slack.messages
        socket.wait_ack(socket.send_interactive(click(slack, alert, "repwatch:snooze")))
        slack.wait_for(2)
        socket.disconnect()
        listening.wait_for("connected to Slack (connection 2)")
    finally:
        listening.terminate()
    assert trail(setup)[0][:3] == ("ana", "slack", "snooze")
    # a change made elsewhere (here the work service, as the CLI and the web inbox do) edits the alert at the next
    # delivery: an in-place refresh, no new message
    from monitor.service.work import Actor, assign
    assign(open_sessions(load_config_and_text(setup.config)[0]), 1, Actor("bob", "cli"), to="bob")
    assert setup.repwatch("deliver").code == 0
    refreshed = slack.messages[-1]
    assert (refreshed["kind"], refreshed["ts"]) == ("update", alert["ts"]) and "taken by bob" in texts(refreshed)


# --- the request URL ---------------------------------------------------------------------------------------------


def signed(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> dict[str, str]:
    base = f"v0:{timestamp}:".encode() + body
    return {"X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest(),
            "Content-Type": "application/x-www-form-urlencoded"}


def test_request_url_accepts_a_signed_click_and_refuses_wrong_old_and_replayed_ones(setup):
    slack = setup.slack
    (alert,) = slack.messages
    actions = SlackActions(load_config_and_text(setup.config)[0], open_sessions(load_config_and_text(setup.config)[0]))
    body = urlencode({"payload": json.dumps(click(slack, alert, "repwatch:take"))}).encode()
    now = int(time.time())

    assert actions.handle_http(body, signed(body, now, "wrong-secret")).status == 401
    assert actions.handle_http(body, signed(body, now - 301)).status == 401  # older than 5 minutes
    assert actions.handle_http(body, {}).status == 401
    assert trail(setup) == []

    answer = actions.handle_http(body, signed(body, now))
    assert (answer.status, answer.body) == (200, b"")
    answer.then()  # what the web app runs after answering
    assert "taken by ana" in texts(slack.messages[-1])
    replay = actions.handle_http(body, signed(body, now))
    assert (replay.status, replay.body) == (401, b"replayed request\n")
    assert len(trail(setup)) == 2


def test_the_starlette_route_applies_a_signed_click_and_refuses_wrong_old_and_replayed_ones(setup):
    """starlette_endpoint() on its own, as `repwatch web` mounts it: POST /slack/actions in a minimal Starlette app,
    driven through httpx's ASGI transport."""
    import asyncio

    import httpx
    from starlette.applications import Starlette
    from starlette.routing import Route

    slack = setup.slack
    (alert,) = slack.messages
    config = load_config_and_text(setup.config)[0]
    endpoint = SlackActions(config, open_sessions(config)).starlette_endpoint()
    app = Starlette(routes=[Route("/slack/actions", endpoint, methods=["POST"])])
    body = urlencode({"payload": json.dumps(click(slack, alert, "repwatch:take"))}).encode()
    now = int(time.time())

    def post(headers: dict[str, str], content: bytes = body) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://repwatch") as client:
                return await client.post("/slack/actions", content=content, headers=headers)
        return asyncio.run(send())

    wrong = post(signed(body, now, "wrong-secret"))
    assert (wrong.status_code, wrong.text) == (401, "bad signature\n")
    old = post(signed(body, now - 301))  # older than 5 minutes
    assert (old.status_code, old.text) == (401, "stale or missing timestamp\n")
    assert post({"Content-Type": "application/x-www-form-urlencoded"}).status_code == 401  # unsigned
    assert trail(setup) == [] and len(slack.messages) == 1

    accepted = post(signed(body, now))
    assert (accepted.status_code, accepted.content) == (200, b"")
    edited = slack.wait_for(2)[1]  # the edit runs after the answer (a background task)
    assert (edited["kind"], edited["ts"]) == ("update", alert["ts"]) and "taken by ana" in texts(edited)
    replay = post(signed(body, now))
    assert (replay.status_code, replay.text) == (401, "replayed request\n")

    # a draft modal submitted empty: Slack shows the error under the field (a JSON answer)
    empty = {"type": "view_submission", "user": {"id": ANA, "username": "ana.s"},
             "view": {"id": "V0DRAFT9", "callback_id": "repwatch:draft", "private_metadata": '{"r": 1, "v": 2}',
                      "state": {"values": {"draft": {"text": {"value": " "}}}}}}
    draft = urlencode({"payload": json.dumps(empty)}).encode()
    refused = post(signed(draft, now), draft)
    assert refused.status_code == 200 and refused.headers["content-type"].startswith("application/json")
    assert refused.json()["response_action"] == "errors" and "empty" in refused.json()["errors"]["draft"]
    assert [(r["assignee"], r["status"]) for r in reviews(setup)] == [("ana", "assigned")]
    assert trail(setup) == [("ana", "slack", "assign", "ana"), ("ana", "slack", "status", "assigned")]
    assert len(slack.messages) == 2


def test_config_without_app_token_cannot_listen(setup, tmp_path):
    config = tmp_path / "plain.yaml"
    config.write_text(setup.config.read_text().split("slack_actions:")[0])
    result = run_cli("slack-listen", "--config", str(config), env=ENV)
    assert result.code == 1 and "no slack_actions.app_token" in result.stderr


def test_repwatch_run_starts_the_listener_when_an_app_token_is_set(setup):
    daemon = start_process("run", "--config", str(setup.config), env=ENV, cwd=setup.tmp)
    try:
        daemon.wait_for("slack listener: started")
        setup.slack.socket.wait_connected(1)  # the child connected over Socket Mode
    finally:
        daemon.terminate()
    assert daemon.proc.returncode == 0


def test_repwatch_web_serves_slacks_request_url_when_a_signing_secret_is_set(setup):
    """`repwatch web` (its server) mounts POST /slack/actions by itself: no Slack route without the secret."""
    import httpx

    from monitor.web.server import WebServer

    slack = setup.slack
    (alert,) = slack.messages
    config = load_config_and_text(setup.config)[0]
    server = WebServer(config, port=0).start()
    try:
        body = urlencode({"payload": json.dumps(click(slack, alert, "repwatch:take"))}).encode()
        url = f"{server.url}/slack/actions"
        refused = httpx.post(url, content=body, headers=signed(body, int(time.time()), "wrong-secret"))
        assert refused.status_code == 401 and trail(setup) == []
        accepted = httpx.post(url, content=body, headers=signed(body, int(time.time())))
        assert (accepted.status_code, accepted.content) == (200, b"")
        update = slack.wait_for_update(alert["ts"], 1)
        assert "taken by ana" in texts(update)
        assert trail(setup)[0] == ("ana", "slack", "assign", "ana")
    finally:
        server.stop()
    without = config.model_copy(update={"slack_actions": None})
    plain = WebServer(without, port=0).start()
    try:
        assert httpx.post(f"{plain.url}/slack/actions", content=b"x").status_code in (403, 404, 405)
    finally:
        plain.stop()
