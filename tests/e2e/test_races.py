"""Commands racing each other as real processes: every sender of the outbox takes the same lock, so an alert goes
out once however `repwatch handle` and `repwatch deliver` overlap."""
from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from demo.server import SiteServer
from demo.slack_receiver import SlackReceiver
from models.tables import Delivery
from monitor.service.locks import OUTBOX_LOCK, lock_path
from tests.cli import start_process
from tests.e2e.conftest import TOKEN, Setup, site_review, write_config

WAIT = 60.0  # seconds: a bound on waiting for a condition, never a pause
REVIEW_NUMBER = re.compile(r"review #(\d+)")


class HoldingSlack(SlackReceiver):
    """The Slack stand-in, holding one chat.postMessage (recorded, not yet answered) until `release()`."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.arrived = threading.Event()  # the held post came in
        self._opened = threading.Event()
        self._holding = False

    def hold_next_post(self) -> None:
        self._holding = True

    def release(self) -> None:
        self._opened.set()

    def close(self) -> None:
        self.release()
        super().close()

    def _api(self, method: str, headers: Any, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        answer = super()._api(method, headers, params)
        if method == "chat.postMessage" and self._holding:
            self._holding = False
            self.arrived.set()
            self._opened.wait(WAIT)
        return answer


def waiting_for_lock(pid: int, lock: Path) -> bool:
    """Whether process `pid` waits for the flock on `lock` (a `->` line of /proc/locks names the waiters)."""
    inode = lock.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and fields[fields.index("->") + 4] == str(pid) and fields[-3].endswith(f":{inode}"):
            return True
    return False


def wait_until(condition: Callable[[], bool]) -> bool:
    """Whether `condition` came true within WAIT seconds, asked every few milliseconds: nothing tells when a
    process starts to wait for a lock, so it is looked at until it does."""
    deadline, tick = time.monotonic() + WAIT, threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.005)
    return True


def posts_per_review(slack: SlackReceiver) -> Counter[int]:
    """How many posts (not edits) named each review."""
    return Counter(int(number) for message in slack.messages if message["kind"] == "post"
                   for number in set(REVIEW_NUMBER.findall(json.dumps(message["blocks"]))))


@pytest.fixture
def racing(tmp_path, database_url):
    with SiteServer() as site, HoldingSlack(token=TOKEN) as slack:
        config = write_config(tmp_path, site.url, slack.api_url, alerting="flood_threshold: 100")
        if database_url.startswith("sqlite"):
            database_url = f"sqlite:///{tmp_path / 'data' / 'repwatch.db'}"  # the config's own
        else:
            config.write_text(config.read_text() + f"database: {json.dumps(database_url)}\n")
        yield Setup(site, slack, config, tmp_path), database_url


def test_handle_racing_deliver_sends_every_alert_once(racing):
    e2e, database_url = racing
    first = site_review(1, 1, hours_ago=2)
    e2e.publish([first])
    assert e2e.crawl().code == 0  # its alert is sent: `handle` of it has an update to send
    waiting = [site_review(n, 1, hours_ago=1) for n in range(2, 27)]
    e2e.publish([first, *waiting])
    assert e2e.crawl("--no-alerts").code == 0
    engine = create_engine(database_url)
    with engine.connect() as db:
        assert db.scalar(select(func.count()).where(Delivery.status == "pending")) == 25
        handled = db.scalar(select(Delivery.review_id).where(Delivery.status == "sent"))
    engine.dispose()

    env = {"SLACK_BOT_TOKEN": TOKEN}
    e2e.slack.hold_next_post()
    deliver = start_process("deliver", "--config", str(e2e.config), env=env)
    try:
        assert e2e.slack.arrived.wait(WAIT)  # `deliver` is sending its first alert, and holds the outbox
        handle = start_process("handle", str(handled), "--config", str(e2e.config), env=env)
        try:
            # `handle` either waits for the outbox lock, or (without it) sends what waits and ends
            outbox = lock_path(e2e.tmp / "data", OUTBOX_LOCK)
            assert wait_until(lambda: handle.proc.poll() is not None or waiting_for_lock(handle.proc.pid, outbox))
            e2e.slack.release()
            assert deliver.proc.wait(WAIT) == 0
            assert handle.proc.wait(WAIT) == 0
        finally:
            handle.kill()
    finally:
        deliver.kill()

    per_review = posts_per_review(e2e.slack)
    assert sum(per_review.values()) == 26, per_review  # the first alert, the 25 that waited: each once
    assert set(per_review.values()) == {1}
    assert [m["kind"] for m in e2e.slack.messages].count("update") == 1  # the handled alert, edited once


def test_only_the_pipeline_sends_the_outbox_and_each_of_its_senders_takes_the_lock():
    """Whoever else called the deliverer would send without the lock: `handle` once did, and sent alerts twice."""
    repo = Path(__file__).resolve().parents[2]
    callers = {str(path.relative_to(repo)) for package in ("monitor", "alerts", "spiders", "models")
               for path in (repo / package).rglob("*.py")
               if re.search(r"(?<!def )\bdeliver_due\(|\balerting\.deliver\(", path.read_text(encoding="utf-8"))}
    assert callers == {"monitor/service/alerting.py", "monitor/service/pipeline.py"}
    pipeline = (repo / "monitor" / "service" / "pipeline.py").read_text(encoding="utf-8")
    sends = pipeline.count("alerting.deliver(")
    assert sends == 3 and pipeline.count("acquire(config.data_dir, OUTBOX_LOCK, wait=True)") == sends
