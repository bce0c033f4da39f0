"""Webhook notifier (repwatch's JSON) against a real local HTTP server: the schema, HTTP errors, config, the old
`format: teams|discord` entries, and `repwatch alerts test webhook`."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from alerts import deprecations
from alerts.base import DeliveryError, Spike, Topic, build_notifier
from alerts.discord import DiscordNotifier
from alerts.teams import TeamsNotifier
from alerts.webhook import WebhookConfig, WebhookNotifier
from monitor.config import ConfigError, parse_config, redacted
from tests.alerts.samples import (
    HEADER_SECRET,
    HOSTILE_BODY,
    HOSTILE_LONG,
    KINDS,
    UNTIL,
    all_notices,
    assert_secret_free,
    check_discord,
    check_teams,
)
from tests.alerts.servers import TOKEN, Receiver
from tests.cli import Result, run_cli

REPO = Path(__file__).resolve().parents[2]


def webhook(url: str, **extra: Any) -> WebhookNotifier:
    config = WebhookConfig.model_validate({"kind": "webhook", "url": url, "min_interval": 0, **extra})
    made = build_notifier("hook", config)
    assert isinstance(made, WebhookNotifier)
    return made


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
    "incident_id": None,
    "also_posted_on": [],
}


def test_json_body_is_the_documented_schema(receiver, tagged):
    result = webhook(receiver.url, headers={"Authorization": HEADER_SECRET}).send(tagged)
    assert result.remote_id is None
    [request] = receiver.requests
    assert request["path"] == f"/api/webhooks/1234/{TOKEN}"
    assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert request["headers"]["Authorization"] == HEADER_SECRET
    assert receiver.json() == {"repwatch_version": 1, "type": "alert", **REVIEW_42}


def test_json_body_is_strict_json_with_nulls_for_what_is_missing(receiver, alert):
    odd = replace(alert, rating=float("nan"), score=float("inf"), author=None, title=None, published_at=None,
                  language=None, draft_reply=None, url="javascript:alert(1)", body="lone \ud800 surrogate")
    webhook(receiver.url).send(odd)
    raw = receiver.requests[0]["body"].decode("utf-8")  # valid UTF-8, and no NaN/Infinity tokens below
    data = json.loads(raw, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert data["rating"] is None and data["score"] is None and data["url"] is None
    assert data["author"] is None and data["published_at"] is None and data["draft_reply"] is None
    assert data["body"] == "lone \ufffd surrogate"


def test_json_keeps_review_text_as_found(receiver, hostile):
    webhook(receiver.url).send(hostile)
    assert receiver.json()["body"] == HOSTILE_BODY  # data, not markup: the consumer escapes it where it shows it


# --------------------------------------------------------------------------------------------------------------
# Notices


@pytest.fixture
def tagged(alert):
    return replace(alert, topics=(Topic("staff", "Staff"), Topic("bread", "Bread")))


def test_json_notice_types_are_the_documented_schema(receiver, tagged, other):
    hook = webhook(receiver.url)
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
    webhook(receiver.url).send_notice(spike)
    data = receiver.json()
    assert data["source"] is None and data["site"] is None and data["examples"] == [] and data["threshold"] == 3


def test_json_summary_carries_every_item_since_webhooks_get_no_separate_alerts(receiver, alert, other):
    summary = all_notices(alert, other, many=400)["summary"]
    webhook(receiver.url).send_notice(summary)
    assert len(receiver.json()["items"]) == 400


@pytest.mark.parametrize("kind", KINDS)
def test_json_hostile_notice_is_strict_json_with_text_as_found(receiver, hostile_notices, kind):
    webhook(receiver.url).send_notice(hostile_notices[kind])
    data = json.loads(receiver.requests[0]["body"].decode("utf-8"), parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    reviews = [data["review"]] if "review" in data else data.get("examples", []) + data.get("items", [])
    expected = HOSTILE_LONG.replace("\ud800", "\ufffd")
    assert reviews and all(r["body"] == expected or r["review_id"] == 43 for r in reviews)


# --------------------------------------------------------------------------------------------------------------
# Errors: what is retried, for how long, and what the message never says


def test_json_endpoint_hints_are_about_its_own_setup(receiver, alert):
    receiver.answer(403, b"forbidden")
    with pytest.raises(DeliveryError) as caught:
        webhook(receiver.url, headers={"Authorization": HEADER_SECRET}).send(alert)
    assert str(caught.value) == "webhook (127.0.0.1): HTTP 403: access refused; check `headers` (e.g. Authorization)"


def test_an_endpoint_echoing_secrets_back_does_not_leak_them(receiver, alert):
    receiver.answer(400, {"message": f"bad request to {receiver.url} with {HEADER_SECRET} and /api/webhooks/1234/{TOKEN}"})
    with pytest.raises(DeliveryError) as caught:
        webhook(receiver.url, headers={"Authorization": HEADER_SECRET}).send(alert)
    assert "***" in str(caught.value)
    assert_secret_free(caught.value, receiver.url)


def test_a_timeout_is_retryable_and_secret_free(receiver, alert):
    receiver.stall()
    with pytest.raises(DeliveryError) as caught:
        webhook(receiver.url, timeout=0.3).send(alert)
    assert caught.value.retryable and "no answer within 0.3s" in str(caught.value)
    assert_secret_free(caught.value, receiver.url)


def test_a_refused_connection_is_retryable_and_secret_free(alert):
    with Receiver() as gone:
        url = gone.url
    # The port was the receiver's a moment ago and nothing listens on it now.
    with pytest.raises(DeliveryError) as caught:
        webhook(url, headers={"X-Api-Key": "hdr-secret-key-1"}).send(alert)
    assert caught.value.retryable and "could not reach the endpoint" in str(caught.value)
    assert_secret_free(caught.value, url)


def test_a_url_httpx_rejects_only_when_connecting_is_a_permanent_secret_free_error(alert):
    url = f"http://a..b/{TOKEN}"
    with pytest.raises(DeliveryError) as caught:
        webhook(url).send(alert)
    assert not caught.value.retryable and "the URL cannot be used" in str(caught.value)
    assert_secret_free(caught.value, url)


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
# The old way: kind: webhook with format: teams | discord (before they were kinds of their own)


@pytest.mark.parametrize("fmt", ["teams", "discord"])
def test_an_old_format_entry_sends_exactly_what_its_kind_sends(receiver, alert, other, fmt):
    old = build_notifier("hook", WebhookConfig.model_validate({"kind": "webhook", "url": receiver.url, "format": fmt,
                                                               "min_interval": 0}))
    new = build_notifier("hook", old.Config.model_validate({"kind": fmt, "url": receiver.url, "min_interval": 0}))
    assert old.kind == fmt and type(old) is type(new) is {"teams": TeamsNotifier, "discord": DiscordNotifier}[fmt]
    for notifier in (old, new):
        notifier.send(alert)
        for notice in all_notices(alert, other).values():
            notifier.send_notice(notice)
    sent = [request["body"] for request in receiver.requests]
    half = len(sent) // 2
    assert sent[:half] == sent[half:]
    check = check_teams if fmt == "teams" else check_discord
    check(json.loads(sent[0]))


def test_an_old_format_entry_keeps_its_headers_timeout_and_the_new_kinds_pace():
    config = WebhookConfig.model_validate({"kind": "webhook", "url": f"https://discord.example/api/webhooks/1/{TOKEN}",
                                           "format": "discord", "headers": {"X-Key": "hdr-secret-1"}, "timeout": 3})
    built = build_notifier("chat", config)
    assert isinstance(built, DiscordNotifier) and built.name == "chat"
    assert built.config.timeout == 3 and built.config.headers["X-Key"].get_secret_value() == "hdr-secret-1"
    assert built.config.min_interval == 2.0  # what format: discord paced at
    assert build_notifier("chat", config.model_copy(update={"format": "teams"})).config.min_interval == 1.0


def test_an_old_format_entry_gets_one_deprecation_line_and_json_none():
    config = parse_config(f"notifiers:\n  ops:\n    kind: webhook\n    url: https://h.example/{TOKEN}\n    format: teams\n"
                          f"  own:\n    kind: webhook\n    url: https://h.example/{TOKEN}\n    format: json\n"
                          f"  new:\n    kind: discord\n    url: https://h.example/{TOKEN}\n", env={})
    assert deprecations("ops", config.notifiers["ops"]) == [
        "notifiers.ops: kind: webhook with format: teams is deprecated; write kind: teams"]
    assert deprecations("own", config.notifiers["own"]) == [] and deprecations("new", config.notifiers["new"]) == []


# --------------------------------------------------------------------------------------------------------------
# The command: repwatch alerts test webhook, with an old format: discord entry


def repwatch(*args: str, env: dict[str, str] | None = None) -> Result:
    return run_cli(*args, env=env, cwd=REPO)

def webhook_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("notifiers:\n  hook:\n    kind: webhook\n    url: ${TEST_WEBHOOK_URL}\n    format: discord\n"
                    "    headers: {Authorization: \"${TEST_WEBHOOK_AUTH}\"}\n", encoding="utf-8")
    return path


def test_alerts_test_webhook_sends_one_sample(tmp_path, receiver):
    result = repwatch("alerts", "test", "webhook", "--config", str(webhook_config(tmp_path)),
                      env={"TEST_WEBHOOK_URL": receiver.url, "TEST_WEBHOOK_AUTH": HEADER_SECRET})
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "hook: sent"
    [request] = receiver.requests
    assert request["headers"]["Authorization"] == HEADER_SECRET
    embed = check_discord(receiver.json())
    assert "test alert" in embed["description"]


def test_alerts_test_webhook_failure_is_one_secret_free_line(tmp_path, receiver):
    receiver.answer(404, {"message": "Unknown Webhook", "code": 10015})
    result = repwatch("alerts", "test", "webhook", "--config", str(webhook_config(tmp_path)),
                      env={"TEST_WEBHOOK_URL": receiver.url, "TEST_WEBHOOK_AUTH": HEADER_SECRET})
    assert result.code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("hook: FAILED: Discord webhook (127.0.0.1): HTTP 404")
    assert TOKEN not in result.stderr + result.stdout and "hdr-secret" not in result.stderr + result.stdout


