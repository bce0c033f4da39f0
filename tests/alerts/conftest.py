"""Fixtures for notifier tests: a Slack-shaped server on 127.0.0.1, sample alerts, and no proxies."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from alerts.base import Alert
from demo.slack_receiver import SlackReceiver

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
