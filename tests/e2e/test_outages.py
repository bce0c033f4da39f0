"""Outages through the CLI: Slack down, rate-limited and hanging, SMTP 451, a locked database, a full disk."""
from __future__ import annotations

import json
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, func, select

from models.tables import CrawlRun, Delivery, Review
from tests.cli import Result, run_cli, run_process
from tests.conftest import ManualClock
from tests.e2e.conftest import TOKEN, Setup, site_review

FOOTER = re.compile(r"review #(\d+)")


def database(e2e: Setup):
    return create_engine(f"sqlite:///{e2e.tmp / 'data' / 'repwatch.db'}")


def problems(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("repwatch:")]


def alerts_by_channel(e2e: Setup) -> dict[str, list[int]]:
    """Review ids of the alerts Slack accepted, per channel, in the order they arrived (from each footer)."""
    seen: dict[str, list[int]] = defaultdict(list)
    for message in e2e.slack.messages:
        if match := FOOTER.search(str(message["blocks"])):
            seen[message["channel"]].append(int(match.group(1)))
    return dict(seen)


@pytest.fixture
def outage(e2e):
    """The e2e setup with two channels (critical reviews go to #urgent), no flood summaries, a 1 s Slack timeout."""
    text = e2e.config.read_text().replace("min_interval: 0", "min_interval: 0\n    timeout: 1")
    text += textwrap.dedent("""
        alerting:
          flood_threshold: 50
          reply_deadline: null
          spike: null
          routes:
            - match: {severity: critical}
              channel: "#urgent"
    """)
    e2e.config.write_text(text)
    return e2e


def history() -> list:
    """Old history (a silent baseline) and four recent negatives: 1★ ones are critical, 2★ ones are not."""
    recent = [site_review(0, 1, 2, body="Food poisoning after the lunch, disgusting and dangerous, avoid."),
              site_review(1, 2, 4),
              site_review(2, 1, 6, body="Rude staff, cold food, charged twice. Awful, never again."),
              site_review(3, 2, 8), site_review(4, 5, 9)]
    return recent + [site_review(n, 1 + n % 5, 200 + 24 * n) for n in range(5, 25)]


def test_slack_down_then_rate_limited_then_hanging_then_back_delivers_every_alert_once_in_order(outage):
    reviews = history()
    outage.publish(reviews)

    # 500s: the first send fails, the destination is left alone for the rest of the run, nothing is lost.
    outage.slack.fail_next(2, status=500)
    down = outage.crawl()
    assert down.code == 1
    assert len(problems(down)) == 1 and "Slack is having trouble, will retry" in problems(down)[0], down.stderr
    assert "next try after" in problems(down)[0] and "Traceback" not in down.stderr
    outage.pass_time()
    # Still down, and a new negative review arrives meanwhile: it queues behind the older ones.
    reviews.insert(0, site_review(50, 2, 1, body="Waited an hour, cold coffee, awful service."))
    outage.publish(reviews)
    still_down = outage.crawl()
    assert still_down.code == 1 and "will retry" in still_down.stderr
    assert outage.slack.messages == []

    # 429 with a Retry-After longer than alerting.max_inline_wait: back to the outbox for as long as Slack asked.
    outage.pass_time()
    outage.slack.rate_limit_next(1, retry_after="120")
    limited = outage.crawl()
    assert limited.code == 1 and "rate limited, retry in 120s" in limited.stderr, limited.stderr
    with database(outage).connect() as db:
        waits = db.execute(select(Delivery.next_attempt_at).where(Delivery.status == "pending")).scalars().all()
    assert len(waits) == 5 and min(waits) >= datetime.now(UTC) + timedelta(seconds=100)

    # Slack takes the request and never answers: the client gives up after its timeout (1 s here).
    outage.pass_time()
    outage.slack.stall_next(1)
    hanging = outage.crawl()
    assert hanging.code == 1
    assert "could not reach Slack (no answer within 1s), will retry" in hanging.stderr, hanging.stderr
    assert outage.slack.messages == []

    # Back: every alert once, each channel in the order they were queued (review ids ascending).
    outage.pass_time()
    back = outage.crawl()
    assert back.code == 0, back.stderr
    channels = alerts_by_channel(outage)
    assert len(channels) == 2, channels  # #reviews and #urgent
    for ids in channels.values():
        assert ids == sorted(ids) and len(ids) == len(set(ids)), channels
    with database(outage).connect() as db:
        alerted = db.execute(select(Review.external_id, Review.id).where(
            Review.id.in_(select(Delivery.review_id).where(Delivery.status == "sent")))).all()
        assert db.scalar(select(func.count()).select_from(Delivery).where(Delivery.status != "sent")) == 0
        attempts = db.execute(select(Delivery.attempts).order_by(Delivery.id)).scalars().all()
    assert sorted(ext for ext, _ in alerted) == sorted(f"{n:024x}" for n in (0, 1, 2, 3, 50))
    assert sorted(i for ids in channels.values() for i in ids) == sorted(i for _, i in alerted)
    assert attempts[0] == 5  # the first alert took every hit: 500, 500, 429, timeout, then sent

    again = outage.crawl()
    assert again.code == 0 and sum(len(ids) for ids in alerts_by_channel(outage).values()) == 5


def test_a_new_alert_does_not_overtake_older_ones_waiting_to_retry(outage):
    reviews = history()
    outage.publish(reviews)
    outage.slack.fail_next(1, status=500)
    assert outage.crawl().code == 1  # four alerts wait 30 s (backoff) for Slack
    reviews.insert(0, site_review(50, 2, 1, body="Waited an hour, cold coffee, awful service."))
    outage.publish(reviews)
    outage.crawl()  # Slack is back, the backoff has not passed yet
    sent = [i for ids in alerts_by_channel(outage).values() for i in ids]
    with database(outage).connect() as db:
        newest = db.scalar(select(Review.id).where(Review.external_id == f"{50:024x}"))
    # Either everything goes out in order, or the new alert waits with the older ones for the same destination.
    assert sent == [] or newest == max(sent) and len(sent) == 5, sent


# --- a site page down for a run ------------------------------------------------------------------------------------


def test_a_page_the_site_failed_to_serve_is_read_on_the_next_run_not_skipped_as_known(outage):
    e2e = outage
    reviews = history()
    e2e.publish(reviews)
    assert e2e.crawl().code == 0
    # 25 new reviews on top: page 1 is all new, page 2 holds the last 5 of them, and page 2 is down for a run.
    reviews = [site_review(200 + n, 1 if n == 22 else 5, 1 + n / 100) for n in range(25)] + reviews
    e2e.publish(reviews)
    e2e.site.set_status("/review/acme.example?page=2", 500)
    flaky = e2e.crawl()
    assert flaky.code == 0  # one page failing is not yet worth alarming anyone (DESIGN §5.8)
    e2e.site.clear_faults()

    # Page 1 is all known now; stopping there would leave the 5 reviews of page 2 (one of them 1★) unseen for good.
    back = e2e.crawl()
    assert back.code == 0, back.stderr
    with database(e2e).connect() as db:
        assert db.scalar(select(func.count(Review.id))) == len(reviews)
    assert f"{222:024x}" in str([m["blocks"] for m in e2e.slack.messages])


# --- SMTP 451 for the weekly digest ------------------------------------------------------------------------------


class FlakyMailbox:
    """aiosmtpd handler: answers DATA with 451 while `down`, then accepts and keeps the message."""

    def __init__(self):
        self.down = True
        self.received: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        if self.down:
            return "451 4.3.0 Mailbox temporarily unavailable"
        self.received.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


class LocalSMTP(Controller):
    """aiosmtpd on 127.0.0.1 at an OS-assigned port (its start-up probe connects to `port`, so learn it first)."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def test_smtp_451_fails_the_digest_with_one_line_and_it_goes_once_when_the_server_is_back(e2e):
    mailbox = FlakyMailbox()
    smtp = LocalSMTP(mailbox, hostname="127.0.0.1", port=0, ready_timeout=10)
    smtp.start()
    try:
        e2e.config.write_text(e2e.config.read_text() + textwrap.dedent(f"""
            digest:
              from: "repwatch <digest@acme.example>"
              to: [owner@acme.example]
              smtp: {{host: 127.0.0.1, port: {smtp.port}, security: none, timeout: 5}}
        """))
        e2e.publish(history())
        assert e2e.crawl().code == 0

        down = e2e.repwatch("digest", "--send")
        assert down.code == 1
        assert problems(down) == down.stderr.strip().splitlines(), down.stderr  # one line, nothing else
        assert len(problems(down)) == 1
        line = problems(down)[0]
        assert "digest for Acme Coffee not sent" in line and "451" in line and "try again later" in line, line
        assert mailbox.received == []

        mailbox.down = False
        back = e2e.repwatch("digest", "--send")
        assert back.code == 0, back.stderr
        assert "Acme Coffee: sent the" in back.stdout
        assert len(mailbox.received) == 1
    finally:
        smtp.stop()


@pytest.fixture
def mailbox():
    """A local SMTP server that takes every message (`down`: answers 451 to each)."""
    box = FlakyMailbox()
    box.down = False
    smtp = LocalSMTP(box, hostname="127.0.0.1", port=0, ready_timeout=10)
    smtp.start()
    box.port = smtp.port
    yield box
    smtp.stop()


def digest_config(tmp_path, port: int, database_url: str | None = None) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(f"""
        data_dir: {tmp_path / 'data'}
        businesses: [{{name: Acme Coffee}}, {{name: Beta Bakery}}]
        digest:
          from: "repwatch <digest@acme.example>"
          to: [owner@acme.example]
          smtp: {{host: 127.0.0.1, port: {port}, security: none, timeout: 5}}
    """) + (f"database: {json.dumps(database_url)}\n" if database_url else ""))
    return config


def test_a_digest_goes_out_once_per_business_and_week_and_force_sends_it_again(tmp_path, database_url, mailbox):
    config = digest_config(tmp_path, mailbox.port, database_url)
    send = lambda *more: run_cli("digest", "--send", "--week", "2026-W10", "--config", str(config), *more)  # noqa: E731
    first = send()
    assert first.code == 0, first.stderr
    assert first.stdout.splitlines() == ["Acme Coffee: sent the 2026-W10 digest to owner@acme.example",
                                         "Beta Bakery: sent the 2026-W10 digest to owner@acme.example"]
    again = send()
    assert (again.code, again.stderr) == (0, "")
    lines = again.stdout.splitlines()
    assert len(lines) == 2 and all(re.fullmatch(
        r"(Acme Coffee|Beta Bakery): the 2026-W10 digest went out on \d{4}-\d\d-\d\d \d\d:\d\d UTC to "
        r"owner@acme.example; not sent again \(--force sends it again\)", line) for line in lines), lines
    assert len(mailbox.received) == 2
    forced = send("--force", "--business", "Beta Bakery")
    assert forced.code == 0, forced.stderr
    assert forced.stdout.startswith("Beta Bakery: sent the 2026-W10 digest to owner@acme.example again (first sent ")
    assert len(mailbox.received) == 3
    other_week = run_cli("digest", "--send", "--week", "2026-W11", "--config", str(config))
    assert other_week.code == 0 and "went out" not in other_week.stdout and len(mailbox.received) == 5
    assert run_cli("digest", "--force", "--config", str(config)).stderr == "repwatch: --force goes with --send\n"


def test_the_daemon_tries_a_digest_the_server_refused_with_451_again_and_it_goes_out_once(tmp_path, mailbox):
    from monitor.scheduler import Daemon

    mailbox.down = True
    config = digest_config(tmp_path, mailbox.port)
    clock = ManualClock(datetime(2026, 3, 9, 7, 59, tzinfo=UTC))
    lines: list[str] = []
    daemon = Daemon(config, clock=clock, log=lines.append)

    def digest_ends() -> str:
        """What the daemon's loop does with its children's ends, until the digest's; its log line."""
        while True:
            kind, exited = daemon.inbox.get(timeout=120)
            assert kind == "exited"
            daemon.child_exited(exited)
            if exited.job_id == "digest":
                return next(line for line in reversed(lines) if "digest:" in line)

    daemon.begin()
    clock.advance(minutes=1)  # Monday 08:00, the digest's time
    daemon.start_due()
    assert digest_ends() == (
        f"2026-03-09 08:00:00Z repwatch run: digest: failed (exit 1): digest for Acme Coffee not sent: SMTP "
        f"127.0.0.1:{mailbox.port}: 451 4.3.0 Mailbox temporarily unavailable (temporary: try again later) (+1 more); "
        "trying again at 08:05:00Z (try 2)")
    mailbox.down = False
    clock.advance(minutes=5)
    daemon.start_due()
    assert digest_ends() == "2026-03-09 08:05:00Z repwatch run: digest: finished ok"
    assert len(mailbox.received) == 2  # one per business, for the week before the first try
    assert all(b"Subject: Reviews of " in m and b", week 2026-W10\r\n" in m for m in mailbox.received), mailbox.received
    clock.advance(minutes=30)
    daemon.start_due()
    assert "digest" not in daemon.children  # sent: nothing more today
    for child in daemon.children.values():
        child.stop()  # a `repwatch deliver` of the daemon's, started on its own schedule
    rerun = run_cli("digest", "--send", "--week", "2026-W10", "--config", str(config))
    assert rerun.code == 0 and rerun.stdout.count("not sent again") == 2 and len(mailbox.received) == 2


# --- a locked database -------------------------------------------------------------------------------------------


LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()  # until the test closes the pipe
db.execute("ROLLBACK")
"""


def test_a_database_locked_by_another_process_fails_the_crawl_with_one_line_and_a_later_run_completes(e2e):
    reviews = history()
    e2e.publish(reviews)
    assert e2e.crawl().code == 0
    engine = database(e2e)
    with engine.connect() as db:
        before = (db.scalar(select(func.count(Review.id))), db.scalar(select(func.count(CrawlRun.id))))
    reviews.insert(0, site_review(60, 1, 1, body="Rude staff, cold food, charged twice. Awful, never again."))
    e2e.publish(reviews)

    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(e2e.tmp / "data" / "repwatch.db")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"
        # SQLite waits out a lock for 30 s (models/db.py busy timeout), then the crawl gives up.
        locked = e2e.crawl()
    finally:
        locker.stdin.close()
        locker.wait(30)
    assert locked.code == 1
    assert locked.stderr.strip().splitlines() == [
        "repwatch: database error: database is locked by another process (waited 30 s); try again"], locked.stderr
    with engine.connect() as db:  # nothing half-written: no review, no run row left "running"
        assert (db.scalar(select(func.count(Review.id))), db.scalar(select(func.count(CrawlRun.id)))) == before

    later = e2e.crawl()
    assert later.code == 0, later.stderr
    with engine.connect() as db:
        assert db.scalar(select(func.count(Review.id))) == before[0] + 1
        assert db.scalar(select(func.count(CrawlRun.id)).where(CrawlRun.outcome == "running")) == 0
    assert len(e2e.slack.messages) == 5  # the four recent negatives of the first run, then the new one, once


# --- a full disk -------------------------------------------------------------------------------------------------


def crawl_with_file_size_limit(e2e: Setup, limit: int) -> Result:
    """`repwatch crawl` (and its crawl child) unable to grow any file past `limit` bytes: a disk that is full.

    RLIMIT_FSIZE makes a write past the limit fail with EFBIG; SIGXFSZ is ignored so that it is an OSError the
    code sees, not a kill. Nothing here needs root or a special filesystem.
    """
    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return run_process("crawl", "--config", str(e2e.config), env={"SLACK_BOT_TOKEN": TOKEN}, cwd=e2e.tmp,
                       preexec_fn=limit_files)


def test_a_full_disk_fails_with_one_line_keeps_the_database_intact_and_loses_nothing_stored(e2e):
    reviews = history()
    e2e.publish(reviews)
    assert e2e.crawl().code == 0
    db_path = e2e.tmp / "data" / "repwatch.db"
    engine = database(e2e)
    with engine.connect() as db:
        stored = set(db.execute(select(Review.external_id)).scalars())
    # 150 new reviews (8 pages): caching and storing them needs more room than the disk has left.
    reviews = [site_review(100 + n, 4, 0.5 + n / 100, body="Nice enough. " * 40) for n in range(150)] + reviews
    e2e.publish(reviews)
    sizes = [p.stat().st_size for p in (e2e.tmp / "data").rglob("*.sqlite")] + [db_path.stat().st_size]

    full = crawl_with_file_size_limit(e2e, max(sizes) + 16 * 1024)
    assert full.code == 1
    assert "Traceback" not in full.stderr
    lines = problems(full)
    assert len(lines) == 1, full.stderr
    # Where it ran out decides the words: a page or a review that could not be written fails the source's run
    # ("cannot write to the data directory (disk full?): disk I/O error at <page>"), a write of the command itself
    # fails the command ("database error: disk I/O error"). Never an ok run that quietly stored half the pages.
    assert "disk full" in lines[0] or "disk I/O error" in lines[0], full.stderr

    with sqlite3.connect(db_path) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with engine.connect() as db:
        assert stored <= set(db.execute(select(Review.external_id)).scalars())

    later = e2e.crawl()
    assert later.code == 0, later.stderr
    with engine.connect() as db:
        assert db.scalar(select(func.count(Review.id))) == len(reviews)
