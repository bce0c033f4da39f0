"""Fixtures for notifier tests: local Slack-shaped, webhook and SMTP servers, sample alerts, and no proxies."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from alerts.base import Alert, Notice
from demo.slack_receiver import SlackReceiver
from tests.alerts import samples
from tests.alerts.samples import HOSTILE_AUTHOR, HOSTILE_BODY, HOSTILE_TITLE
from tests.alerts.servers import LocalSMTP, Mailbox, Receiver


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack-sdk would send 127.0.0.1 traffic to a proxy from the environment; tests stay on loopback."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver(token="xoxb-test-bot-token") as receiver:
        yield receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., LocalSMTP]]:
    """Starts aiosmtpd with a handler (and aiosmtpd options); every server started is stopped after the test."""
    started: list[LocalSMTP] = []

    def start(handler: Mailbox, **smtp_options) -> LocalSMTP:
        controller = LocalSMTP(handler, hostname="127.0.0.1", port=0, ready_timeout=10, **smtp_options)
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def alert() -> Alert:
    return Alert(
        review_id=42,
        business="Acme Bakery",
        source="acme-trustpilot",
        site="Trustpilot",
        url="https://www.trustpilot.com/reviews/65a1b2c3d4",
        body="Cold bread and rude staff. Never again.",
        label="neg",
        severity="high",
        why="1★ rating",
        rating=1,
        author="Jane D.",
        title="Awful morning",
        published_at=datetime(2026, 11, 20, 14, 3, tzinfo=timezone.utc),
        language="en",
        score=-0.91,
        draft_reply="Hi Jane, we are sorry about your visit. Could you write to us at hello@acme.example?",
    )


@pytest.fixture
def other(alert: Alert) -> Alert:
    return replace(alert, review_id=43, severity="critical", rating=2, title=None, body="Waited an hour for a coffee.",
                   url="https://www.trustpilot.com/reviews/43", author=None)


@pytest.fixture
def hostile(alert: Alert) -> Alert:
    return replace(alert, body=HOSTILE_BODY, title=HOSTILE_TITLE, author=HOSTILE_AUTHOR, why="text negative: **never** again",
                   draft_reply="Sorry [click](http://evil.example) @everyone")


@pytest.fixture
def hostile_notices(alert: Alert, other: Alert) -> dict[str, Notice]:
    return samples.hostile_notices(alert, other)
