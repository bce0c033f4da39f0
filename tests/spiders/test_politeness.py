"""spiders/politeness.py's pure parts: Retry-After parsing, the robots.txt token, the per-host gate."""
from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from email.utils import format_datetime
from itertools import pairwise
from pathlib import Path

import pytest

from spiders.politeness import HostGate, parse_retry_after, robots_token
from spiders.settings import BOT_NAME, crawl_settings
from tests.conftest import START


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("1", 1.0),
        (b"120", 120.0),
        (" 0 ", 0.0),
        (format_datetime(START + timedelta(seconds=90), usegmt=True), 90.0),
        ("Mon, 02 Mar 2026 12:02:00 GMT", 120.0),
        ("Mon, 02 Mar 2026 11:00:00 GMT", 0.0),  # in the past: retry now
    ],
)
def test_retry_after_in_seconds_or_as_an_http_date(header, seconds, clock):
    assert parse_retry_after(header, now=clock.now()) == pytest.approx(seconds)


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "1.5", "3e2", "Mon, 02 Mar 2026 12:02:00", "Mon, 99 Foo"])
def test_junk_retry_after_is_unreadable(header, clock):
    assert parse_retry_after(header, now=clock.now()) is None


def test_robots_rules_are_matched_against_our_product_token():
    assert robots_token("repwatch/0.1 (+https://github.com/repwatch/repwatch)", BOT_NAME) == "repwatch"
    assert robots_token("acme-watch/2", BOT_NAME) == "acme-watch"
    assert robots_token("Mozilla/5.0 (X11; Linux x86_64) Chrome/120", BOT_NAME) == BOT_NAME
    assert robots_token("", BOT_NAME) == BOT_NAME
    crawl = {"user_agent": "repwatch/0.1 (+https://x)", "obey_robots": True, "concurrency": 1, "download_delay": 1.0,
             "polite": True}
    settings = crawl_settings(crawl, data_dir=Path("/tmp"), database_url="sqlite://")
    assert settings["ROBOTSTXT_USER_AGENT"] == "repwatch"
    assert settings["DOWNLOADER"] == "spiders.politeness.PoliteDownloader"


def test_the_gate_spaces_sends_to_one_host_and_leaves_others_alone():
    async def sends() -> dict[str, list[float]]:
        gate = HostGate()
        times: dict[str, list[float]] = {"http://a": [], "http://b": []}

        async def send(host: str, interval: float) -> None:
            await gate.turn(host, interval)
            times[host].append(time.monotonic())

        await asyncio.gather(*(send("http://a", 0.05) for _ in range(3)), send("http://b", 0.05))
        return times

    times = asyncio.run(sends())
    a = times["http://a"]
    assert [round(later - earlier, 2) >= 0.05 for earlier, later in pairwise(a)] == [True, True]
    assert times["http://b"][0] <= a[1]  # another host does not queue behind a's delay


def test_a_hold_delays_even_requests_already_waiting():
    async def send_after_hold() -> float:
        gate = HostGate()
        await gate.turn("http://a", 0.0)
        start = time.monotonic()
        waiting = asyncio.ensure_future(gate.turn("http://a", 0.01))
        await asyncio.sleep(0)  # let it start waiting for its turn
        gate.hold("http://a", 0.1)  # a Retry-After arrives meanwhile
        await waiting
        return time.monotonic() - start

    assert asyncio.run(send_after_hold()) >= 0.1


def test_backoff_doubles_from_the_base_and_stops_at_the_cap():
    from spiders.politeness import BACKOFF_MAX, backoff_seconds

    assert [backoff_seconds(n) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff_seconds(20) == BACKOFF_MAX
    assert backoff_seconds(1, base=0.25, cap=0.3) == 0.3
