"""`repwatch run` end to end: the real daemon, its crawl children, a local site, and the signals an operator sends."""
from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field

import pytest
from sqlalchemy import create_engine, select

from demo.server import SiteServer
from demo.sitegen import trustpilot_pages
from demo.slack_receiver import SlackReceiver
from models.tables import CrawlRun, Source
from monitor.service.locks import EXIT_LOCKED
from tests.cli import RunningProcess, run_process
from tests.e2e.conftest import TOKEN, Setup, site_review, write_config

WAIT = 90  # seconds: an upper bound for a crawl child to come and go, never a pause


@dataclass
class Gate:
    arrived: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)


class GatedSite(SiteServer):
    """The demo site, except that a held page answers only once the test opens its gate."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gates: dict[str, Gate] = {}

    def hold(self, path: str) -> Gate:
        self.gates[path] = Gate()
        return self.gates[path]

    def _lookup(self, path):  # runs in the request's thread, before the answer
        gate = self.gates.get(path)
        if gate is not None:
            gate.arrived.set()
            gate.opened.wait(WAIT)
        return super()._lookup(path)


class RunningDaemon(RunningProcess):
    """`repwatch run` as a child process."""

    def __init__(self, setup: Setup, *args: str):
        super().__init__(["run", "--config", str(setup.config), *args], env={"SLACK_BOT_TOKEN": TOKEN}, cwd=setup.tmp,
                         timeout=WAIT)

    def wait_for(self, text: str, count: int = 1) -> str:  # type: ignore[override]
        """The first stderr line containing `text`."""
        return super().wait_for(text, count)[0]

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)


@pytest.fixture
def daemon_setup(tmp_path):
    with GatedSite(robots_txt="User-agent: *\n") as site, SlackReceiver(token=TOKEN) as slack:
        config = write_config(tmp_path, site.url, slack.api_url)
        config.write_text(config.read_text() + "schedule:\n  jitter: 0s\n")
        setup = Setup(site, slack, config, tmp_path)
        setup.publish([site_review(0, 1, 3)] + [site_review(n, 5, 100 + n) for n in range(1, 6)])
        daemons: list[RunningDaemon] = []
        yield setup, daemons
        for gate in site.gates.values():
            gate.opened.set()
        for daemon in daemons:
            daemon.kill()


def crawl_runs(setup: Setup) -> list[tuple[str, str]]:
    engine = create_engine(f"sqlite:///{setup.tmp / 'data' / 'repwatch.db'}")
    with engine.connect() as db:
        rows = db.execute(select(Source.name, CrawlRun.outcome).join(CrawlRun.source).order_by(CrawlRun.id)).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_sighup_adds_a_source_and_sigterm_lets_the_running_crawl_finish(daemon_setup):
    setup, daemons = daemon_setup
    daemon = RunningDaemon(setup)
    daemons.append(daemon)
    daemon.wait_for("crawl acme-trustpilot: every 6h (UTC), next now (never run)")
    daemon.wait_for("crawl acme-trustpilot: finished ok")
    assert crawl_runs(setup) == [("acme-trustpilot", "ok")]
    assert len(setup.slack.messages) == 1  # the crawl child scored and alerted, as `repwatch crawl` does

    second = run_process("run", "--config", str(setup.config), env={"SLACK_BOT_TOKEN": TOKEN}, cwd=setup.tmp)
    assert second.code == EXIT_LOCKED
    assert f"another `repwatch run` (pid {daemon.proc.pid}, started" in second.stderr

    # A new source whose page the site holds: SIGHUP schedules it, and it is crawled at once (never crawled before).
    for path, body in trustpilot_pages("other.example", [site_review(50, 4, 10)]).items():
        setup.site.set_page(path, body)
    gate = setup.site.hold("/review/other.example")
    setup.config.write_text(setup.config.read_text().replace("schedule:", (
        "      - name: acme-other\n"
        "        kind: trustpilot\n"
        f"        url: {setup.site.url}/review/other.example\n"
        "schedule:")))
    daemon.signal(signal.SIGHUP)
    daemon.wait_for("reload: ok, 3 jobs (added crawl:acme-other)")
    assert gate.arrived.wait(WAIT)

    daemon.signal(signal.SIGTERM)
    daemon.wait_for("stopping: waiting up to 1m for crawl acme-other")
    gate.opened.set()
    assert daemon.proc.wait(WAIT) == 0
    daemon.wait_for("crawl acme-other: finished ok")
    assert daemon.wait_for("stopped").endswith("repwatch run: stopped")
    assert crawl_runs(setup) == [("acme-trustpilot", "ok"), ("acme-other", "ok")]
    assert not any(TOKEN in line for line in daemon.lines)
    assert all(" repwatch run: " in line for line in daemon.lines if line != "<EOF>"), daemon.lines  # one per event


def test_a_crawl_still_running_after_the_grace_period_is_stopped_and_the_daemon_exits_0(daemon_setup):
    setup, daemons = daemon_setup
    gate = setup.site.hold("/review/acme.example")
    daemon = RunningDaemon(setup, "--grace", "1s")
    daemons.append(daemon)
    assert gate.arrived.wait(WAIT)
    daemon.signal(signal.SIGTERM)
    daemon.wait_for("stopping: waiting up to 1s for crawl acme-trustpilot")
    daemon.wait_for("crawl acme-trustpilot: still running after the grace period, stopping it")
    assert daemon.proc.wait(WAIT) == 0
    assert "crawl acme-trustpilot: stopped (exit 130)" in daemon.wait_for("crawl acme-trustpilot: stopped")
    assert daemon.lines[-2].endswith("repwatch run: stopped")
    assert setup.slack.messages == []
