"""Crawl locks: one crawl of a source at a time, across processes, and a dead holder never blocks the next crawl."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from demo.server import SiteServer
from demo.slack_receiver import SlackReceiver
from monitor.service.locks import EXIT_LOCKED, LockHeld, acquire, lock_path
from tests.e2e.conftest import DOMAIN, REPO, TOKEN, Setup, site_review, write_config

# Takes a lock, says so, and holds it until its stdin closes (or it is killed).
HOLDER = ("import sys; from pathlib import Path; from monitor.service.locks import acquire; "
          "lock = acquire(Path(sys.argv[1]), sys.argv[2]); print('locked', flush=True); sys.stdin.read()")


def hold_lock(data_dir, name: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir), name], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert holder.stdout.readline() == "locked\n"
    return holder


@pytest.fixture
def e2e(tmp_path):
    with SiteServer(robots_txt="User-agent: *\n") as site, SlackReceiver(token=TOKEN) as slack:
        config = write_config(tmp_path, site.url, slack.api_url)
        # A second source on the same site, so one can be locked while the other is crawled.
        config.write_text(config.read_text() + f"      - name: acme-again\n"
                                               f"        kind: trustpilot\n"
                                               f"        url: {site.url}/review/{DOMAIN}\n")
        setup = Setup(site, slack, config, tmp_path)
        setup.publish([site_review(n, 5, 100 + n) for n in range(5)])
        yield setup


SKIPPED = re.compile(r"^repwatch: source (\S+): skipped, another crawl \(pid (\d+), started (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC\) holds its lock$")


def test_a_crawl_of_a_locked_source_is_skipped_with_exit_75_until_the_holder_is_killed(e2e):
    holder = hold_lock(e2e.tmp / "data", "acme-trustpilot")
    try:
        locked = e2e.crawl("--source", "acme-trustpilot")
        assert locked.code == EXIT_LOCKED
        (line,) = locked.stderr.splitlines()
        match = SKIPPED.match(line)
        assert match and match[1] == "acme-trustpilot" and int(match[2]) == holder.pid, line
        started = datetime.strptime(match[3], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        assert abs((datetime.now(UTC) - started).total_seconds()) < 120
        assert e2e.page_requests() == []
    finally:
        holder.kill()  # SIGKILL: no cleanup runs; the OS drops its flock
        holder.wait()
    after = e2e.crawl("--source", "acme-trustpilot")
    assert after.code == 0, after.stderr
    assert "skipped" not in after.stderr and e2e.page_requests()


def test_the_sources_not_locked_are_crawled_and_decide_the_exit_code(e2e):
    holder = hold_lock(e2e.tmp / "data", "acme-again")
    try:
        result = e2e.crawl()
    finally:
        holder.stdin.close()
        holder.wait()
    assert result.code == 0, result.stderr
    problems = [line for line in result.stderr.splitlines() if line.startswith("repwatch:")]  # not the progress lines
    assert len(problems) == 1 and SKIPPED.match(problems[0])[1] == "acme-again"
    assert "acme-trustpilot" in result.stdout and "acme-again" not in result.stdout


def test_a_lock_is_exclusive_even_within_one_process_and_free_again_after_release(tmp_path):
    first = acquire(tmp_path, "shop")
    with pytest.raises(LockHeld) as held:
        acquire(tmp_path, "shop")
    assert held.value.holder.pid == os.getpid()
    assert acquire(tmp_path, "other").name == "other"  # per source
    first.release()
    assert lock_path(tmp_path, "shop").read_text() == ""  # no stale holder shown to the next one in
    with acquire(tmp_path, "shop") as again:
        assert f'"pid": {os.getpid()}' in again.path.read_text()


def test_a_holder_that_has_not_written_yet_is_described_plainly(tmp_path):
    lock_path(tmp_path, "shop").parent.mkdir(parents=True)
    holder = hold_lock(tmp_path, "shop")
    try:
        lock_path(tmp_path, "shop").write_text("")
        with pytest.raises(LockHeld) as held:
            acquire(tmp_path, "shop")
        assert held.value.holder.describe() == "pid unknown, started at an unknown time"
    finally:
        holder.kill()
        holder.wait()
