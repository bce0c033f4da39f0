"""The scheduler daemon's decisions on a controllable clock: what starts when, catch-up, jitter, the cap, reloads."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import parse_config
from monitor.scheduler import Daemon, Schedule
from monitor.service.jobs import DELIVER, Exited, JobSpec, job_specs
from monitor.service.locks import EXIT_LOCKED
from tests.conftest import START, ManualClock


def config_text(sources: dict[str, str | None], schedule: str = "", digest: bool = False, data_dir: Path | None = None) -> str:
    """A config with one business and these sources (name → its own `schedule:` flow mapping, or None)."""
    lines = [f"data_dir: {data_dir}" if data_dir else "", schedule]
    if digest:
        lines.append("digest: {from: r@example.com, to: [o@example.com], smtp: {host: 127.0.0.1, security: none}}")
    lines.append("businesses:\n  - name: Acme\n    sources:" + ("" if sources else " []"))
    for name, own in sources.items():
        lines.append(f"      - {{name: {name}, kind: trustpilot, url: 'https://www.trustpilot.com/review/{name}.example'"
                     + (f", schedule: {own}" if own else "") + "}")
    return "\n".join(lines) + "\n"


def make_schedule(text: str, clock: ManualClock, last_runs: dict[str, datetime | None] | None = None,
                  seed: int = 1) -> tuple[Schedule, list[JobSpec]]:
    config = parse_config(text, env={})
    specs = job_specs(config)
    schedule = Schedule(clock, jitter=config.schedule.jitter, max_concurrent=config.schedule.max_concurrent_crawls,
                        rng=random.Random(seed))
    schedule.plan(specs, last_runs or {})
    return schedule, specs


def started_ids(schedule: Schedule) -> list[str]:
    """The crawls and digests started now (the every-5-minutes `deliver` job has its own test)."""
    started, _ = schedule.start_due()
    return [spec.id for spec in started if spec.id != DELIVER]


def finish_all(schedule: Schedule) -> None:
    for spec in schedule.running():
        schedule.finished(spec.id)


NO_JITTER = "schedule: {jitter: 0s, max_concurrent_crawls: 8}"


# --- when jobs fire ---------------------------------------------------------------------------------------


def test_an_interval_schedule_fires_when_due_and_not_before(clock):
    schedule, _ = make_schedule(config_text({"a": None}, NO_JITTER + "\n"), clock, {"crawl:a": START - timedelta(hours=1)})
    assert started_ids(schedule) == []  # the default is every 6h, and a crawl ran an hour ago
    clock.advance(hours=4, minutes=59)
    assert started_ids(schedule) == []
    clock.advance(minutes=1)
    assert started_ids(schedule) == ["crawl:a"]
    finish_all(schedule)
    clock.advance(hours=5, minutes=59)
    assert started_ids(schedule) == []
    clock.advance(minutes=1)
    assert started_ids(schedule) == ["crawl:a"]


def test_a_cron_schedule_fires_at_its_times_in_its_time_zone():
    clock = ManualClock(datetime(2026, 3, 2, 5, 0, tzinfo=UTC))
    text = config_text({"a": None}, 'schedule: {jitter: 0s, timezone: Europe/Athens, crawl: {cron: "30 9 * * 1-5"}}\n')
    schedule, _ = make_schedule(text, clock, {"crawl:a": clock.now()})
    assert schedule.jobs["crawl:a"].due == datetime(2026, 3, 2, 7, 30, tzinfo=UTC)  # 09:30 in Athens (UTC+2)
    clock.current = datetime(2026, 3, 2, 7, 29, 59, tzinfo=UTC)
    assert started_ids(schedule) == []
    clock.advance(seconds=1)
    assert started_ids(schedule) == ["crawl:a"]
    finish_all(schedule)
    # Friday's run, then Monday's: in cron 1-5 is Monday to Friday (APScheduler 3 alone would read Tuesday-Saturday).
    assert schedule.jobs["crawl:a"].due == datetime(2026, 3, 3, 7, 30, tzinfo=UTC)
    clock.current = datetime(2026, 3, 6, 7, 30, tzinfo=UTC)
    assert started_ids(schedule) == ["crawl:a"]  # Tuesday to Friday without a run: one run
    finish_all(schedule)
    assert schedule.jobs["crawl:a"].due == datetime(2026, 3, 9, 7, 30, tzinfo=UTC)


def test_a_source_schedule_overrides_the_default(clock):
    text = config_text({"daily": None, "hourly": "{every: 1h}", "cron": '{cron: "15 * * * *"}'},
                       'schedule: {jitter: 0s, max_concurrent_crawls: 8, crawl: {every: 1d}}\n')
    schedule, specs = make_schedule(text, clock, {f"crawl:{n}": START for n in ("daily", "hourly", "cron")})
    assert {s.id: s.schedule for s in specs if s.id != DELIVER} == {
        "crawl:daily": "every 1d (UTC)", "crawl:hourly": "every 1h (UTC)", "crawl:cron": "cron 15 * * * * (UTC)"}
    clock.advance(minutes=15)
    assert started_ids(schedule) == ["crawl:cron"]
    clock.advance(minutes=45)
    assert started_ids(schedule) == ["crawl:hourly"]
    finish_all(schedule)
    clock.advance(hours=23)
    assert sorted(started_ids(schedule)) == ["crawl:cron", "crawl:daily", "crawl:hourly"]


def test_jitter_delays_each_crawl_within_its_bounds(clock):
    names = {f"s{i}": None for i in range(40)}
    schedule, _ = make_schedule(config_text(names, "schedule: {jitter: 5m, max_concurrent_crawls: 32}\n"), clock,
                                {f"crawl:{n}": START for n in names}, seed=7)
    fire = START + timedelta(hours=6)
    crawls = [state for state in schedule.jobs.values() if state.spec.kind == "crawl"]
    delays = [(state.due - fire).total_seconds() for state in crawls]
    assert all(state.fire == fire for state in crawls)
    assert all(0 <= d <= 300 for d in delays)
    assert len(set(delays)) == len(delays) and max(delays) - min(delays) > 120  # spread out, not one burst
    clock.current = fire - timedelta(seconds=1)
    assert started_ids(schedule) == []
    clock.current = fire + timedelta(seconds=300)
    assert len(started_ids(schedule)) == 32  # every one is due by then (the cap holds the other 8)


def test_the_digest_is_never_jittered(clock):
    schedule, _ = make_schedule(config_text({"a": None}, "schedule: {jitter: 1h}\n", digest=True), clock,
                                {"digest": START - timedelta(hours=1), "crawl:a": START})
    assert schedule.jobs["digest"].due == datetime(2026, 3, 9, 8, 0, tzinfo=UTC)  # next Monday 08:00 exactly


# --- catch-up after downtime --------------------------------------------------------------------------------


def test_a_gap_of_many_periods_is_caught_up_once_not_once_per_period(clock):
    schedule, _ = make_schedule(config_text({"a": "{every: 1h}"}, NO_JITTER + "\n", digest=True), clock,
                                {"crawl:a": START - timedelta(days=30), "digest": START - timedelta(weeks=5)})
    assert sorted(started_ids(schedule)) == ["crawl:a", "digest"]
    finish_all(schedule)
    assert started_ids(schedule) == []
    clock.advance(minutes=59)
    assert started_ids(schedule) == []
    clock.advance(minutes=1)
    assert started_ids(schedule) == ["crawl:a"]  # an hour after the catch-up, then hourly
    assert schedule.jobs["digest"].due == datetime(2026, 3, 9, 8, 0, tzinfo=UTC)


def test_nothing_is_caught_up_when_the_last_run_came_after_the_last_scheduled_time():
    clock = ManualClock(START + timedelta(minutes=30))
    schedule, _ = make_schedule(config_text({"a": '{cron: "0 */6 * * *"}'}, NO_JITTER + "\n", digest=True), clock,
                                {"crawl:a": START + timedelta(minutes=1), "digest": START - timedelta(hours=3)})
    assert started_ids(schedule) == []  # 12:00's crawl ran at 12:01 (from cron), Monday's digest went out at 09:00
    assert schedule.jobs["crawl:a"].due == START + timedelta(hours=6)


def test_a_source_never_crawled_runs_at_once_and_a_digest_never_sent_waits_for_its_time(clock):
    schedule, _ = make_schedule(config_text({"new": None}, NO_JITTER + "\n", digest=True), clock, {})
    assert started_ids(schedule) == ["crawl:new"]
    assert schedule.jobs["digest"].due == datetime(2026, 3, 9, 8, 0, tzinfo=UTC)


# --- concurrency --------------------------------------------------------------------------------------------


def test_no_more_crawls_run_at_once_than_the_cap_and_the_digest_is_not_counted(clock):
    names = {n: None for n in ("a", "b", "c", "d", "e")}
    schedule, _ = make_schedule(config_text(names, "schedule: {max_concurrent_crawls: 2}\n", digest=True), clock,
                                {"digest": START - timedelta(weeks=1)})
    assert started_ids(schedule) == ["crawl:a", "crawl:b", "digest"]
    assert started_ids(schedule) == []
    schedule.finished("crawl:b")
    assert started_ids(schedule) == ["crawl:c"]
    schedule.finished("digest")
    assert started_ids(schedule) == []
    for done, following in (("crawl:a", "crawl:d"), ("crawl:c", "crawl:e")):
        schedule.finished(done)
        assert started_ids(schedule) == [following]
        assert schedule.running_crawls() == 2


def test_a_crawl_still_running_at_its_next_time_is_skipped_once(clock):
    schedule, _ = make_schedule(config_text({"slow": "{every: 1h}"}, NO_JITTER + "\n"), clock, {})
    assert started_ids(schedule) == ["crawl:slow"]
    clock.advance(hours=3, minutes=10)
    started, skipped = schedule.start_due()
    assert [s.id for s in started if s.id != DELIVER] == []
    assert [s.spec.id for s in skipped] == ["crawl:slow"] and skipped[0].running_since == START
    assert schedule.start_due() == ([], [])  # the missed hours are one skip, not three
    schedule.finished("crawl:slow")
    clock.advance(minutes=49)
    assert started_ids(schedule) == []
    clock.advance(minutes=1)
    assert started_ids(schedule) == ["crawl:slow"]  # still on its hourly times


# --- the daemon: children, log lines, reloads, what it remembers ---------------------------------------------


@dataclass
class FakeChild:
    pid: int
    stopped: bool = False

    def stop(self) -> None:
        self.stopped = True


@dataclass
class FakeLauncher:
    launched: list[tuple[str, tuple[str, ...], Path]] = field(default_factory=list)

    def launch(self, spec, config_path, report):
        self.launched.append((spec.id, spec.args, config_path))
        return FakeChild(1000 + len(self.launched))


@dataclass
class Run:
    daemon: Daemon
    launcher: FakeLauncher
    clock: ManualClock
    lines: list[str]
    config: Path

    def ids(self) -> list[str]:
        return [job_id for job_id, _, _ in self.launcher.launched if job_id != DELIVER]

    def exit(self, job_id: str, code: int = 0, stderr: str = "") -> None:
        self.daemon.child_exited(Exited(job_id, code, stderr))

    def logged(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]


def start_daemon(tmp_path: Path, text: str, clock: ManualClock | None = None) -> Run:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    clock = clock or ManualClock()
    launcher, lines = FakeLauncher(), []
    daemon = Daemon(config, clock=clock, launcher=launcher, rng=random.Random(3), log=lines.append)
    daemon.begin()
    return Run(daemon, launcher, clock, lines, config)


def record_crawls(tmp_path: Path, started: dict[str, datetime]) -> None:
    from models.db import connect, migrate, session_factory
    from models.tables import Business, CrawlRun, Source

    engine = connect(f"sqlite:///{tmp_path / 'data' / 'repwatch.db'}")
    migrate(engine)
    with session_factory(engine).begin() as session:
        business = Business(name="Acme")
        for name, at in started.items():
            source = Source(name=name, kind="trustpilot", url=f"https://www.trustpilot.com/review/{name}.example",
                            business=business)
            session.add(CrawlRun(source=source, started_at=at - timedelta(hours=1), finished_at=at, outcome="ok"))
            session.add(CrawlRun(source=source, started_at=at, finished_at=at, outcome="ok"))
    engine.dispose()


def test_the_daemon_runs_each_job_as_its_cli_verb_on_the_validated_config(tmp_path):
    run = start_daemon(tmp_path, config_text({"a": None}, NO_JITTER, digest=True, data_dir=tmp_path / "data"),
                       ManualClock(datetime(2026, 3, 9, 8, 0, tzinfo=UTC)))
    (_, args, config_path), = run.launcher.launched
    assert args == ("crawl", "--source", "a")
    assert config_path == tmp_path / "data" / "run" / "config.yaml"
    assert parse_config(config_path.read_text(), env={}).sources()[0][1].name == "a"
    assert oct(config_path.stat().st_mode & 0o777) == "0o600"
    assert run.logged("crawl a: every 6h (UTC), next now (never run)")
    assert run.logged("digest: cron 0 8 * * mon (UTC), next 2026-03-16 08:00:00Z")


def test_the_daemon_catches_up_from_the_crawl_runs_in_the_database(tmp_path):
    record_crawls(tmp_path, {"fresh": START - timedelta(hours=1), "stale": START - timedelta(days=10)})
    run = start_daemon(tmp_path, config_text({"fresh": None, "stale": None, "unknown": None}, NO_JITTER,
                                             data_dir=tmp_path / "data"))
    assert sorted(run.ids()) == ["crawl:stale", "crawl:unknown"]
    assert run.daemon.schedule.jobs["crawl:fresh"].due == START + timedelta(hours=5)
    assert run.logged("crawl stale: every 6h (UTC), next now (missed a run since 2026-02-20 12:00Z)")


def test_each_child_outcome_is_one_log_line(tmp_path):
    run = start_daemon(tmp_path, config_text({"a": None, "b": None, "c": None}, NO_JITTER, data_dir=tmp_path / "data"))
    assert run.logged("crawl a: started (pid 1001)")
    run.exit("crawl:a")
    run.exit("crawl:b", 1, "scoring…\nrepwatch: source b failed: crawl timed out after 900 s\nrepwatch: alerts: slack down\n")
    run.exit("crawl:c", EXIT_LOCKED, "repwatch: source c: skipped, another crawl (pid 9, started …) holds its lock\n")
    assert [line.split(" repwatch run: ", 1)[1] for line in run.lines[-3:]] == [
        "crawl a: finished ok",
        "crawl b: failed (exit 1): source b failed: crawl timed out after 900 s (+1 more)",
        "crawl c: skipped, another crawl holds its lock",
    ]
    assert all(line.startswith("2026-03-02 12:00:00Z repwatch run: ") for line in run.lines)


def test_sighup_with_a_bad_config_keeps_the_old_schedule_and_says_why(tmp_path):
    run = start_daemon(tmp_path, config_text({"a": None}, NO_JITTER, data_dir=tmp_path / "data"))
    run.exit("crawl:a")
    before = {job_id: (s.spec, s.due) for job_id, s in run.daemon.schedule.jobs.items()}
    snapshot = run.daemon.snapshot_path.read_text()
    run.config.write_text(config_text({"a": None, "b": "{every: 1h, cron: '0 * * * *'}"}, NO_JITTER,
                                      data_dir=tmp_path / "data"))
    assert run.daemon.reload() is False
    assert run.lines[-1] == ("2026-03-02 12:00:00Z repwatch run: reload: bad config, keeping the old one: "
                             "source b: schedule: give exactly one of `every:` (like 6h) or `cron:` "
                             '(like "0 */6 * * *")')
    assert {job_id: (s.spec, s.due) for job_id, s in run.daemon.schedule.jobs.items()} == before
    assert run.daemon.snapshot_path.read_text() == snapshot  # the children still get the good config
    run.clock.advance(hours=6)
    run.daemon.start_due()
    assert run.ids() == ["crawl:a", "crawl:a"]


def test_sighup_with_a_good_config_picks_up_a_new_source_and_drops_a_removed_one(tmp_path):
    run = start_daemon(tmp_path, config_text({"a": None, "gone": None}, NO_JITTER, data_dir=tmp_path / "data"))
    run.exit("crawl:a")
    run.config.write_text(config_text({"a": "{every: 1h}", "new": None}, NO_JITTER, data_dir=tmp_path / "data"))
    assert run.daemon.reload() is True
    assert run.logged("reload: ok, 3 jobs (added crawl:new; removed crawl:gone; changed crawl:a)")
    assert run.ids() == ["crawl:a", "crawl:gone", "crawl:new"]  # the new source is crawled at once
    assert "new" in run.daemon.snapshot_path.read_text()
    run.exit("crawl:gone")  # it finished after its removal: never scheduled again
    assert "crawl:gone" not in run.daemon.schedule.jobs
    run.clock.advance(hours=1)
    run.daemon.start_due()
    assert run.ids()[-1] == "crawl:a"  # its new hourly schedule, counted from its last run


def test_the_digest_sent_is_remembered_across_restarts(tmp_path):
    monday = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    text = config_text({}, NO_JITTER, digest=True, data_dir=tmp_path / "data")
    run = start_daemon(tmp_path, text, ManualClock(monday - timedelta(minutes=1)))
    run.clock.advance(minutes=1)
    run.daemon.start_due()
    assert run.ids() == ["digest"]
    run.exit("digest")
    state = json.loads((tmp_path / "data" / "scheduler-state.json").read_text())
    assert state == {"digest": {"last_run": monday.isoformat(), "week": "2026-W10"}}

    # Down from Sunday to Wednesday of the next week but one: one digest at start, then Mondays again.
    restart = start_daemon(tmp_path, text, ManualClock(datetime(2026, 3, 25, 10, 0, tzinfo=UTC)))
    assert restart.ids() == ["digest"]
    restart.exit("digest", 1, "repwatch: digest for Acme not sent: 451 try later (temporary: try again later)\n")
    assert restart.logged("digest: failed (exit 1): digest for Acme not sent: 451 try later")
    assert json.loads((tmp_path / "data" / "scheduler-state.json").read_text()) == state  # not sent: not recorded


def test_stopping_starts_nothing_new_and_terminates_only_after_the_grace_period(tmp_path):
    run = start_daemon(tmp_path, config_text({"a": None, "b": None}, "schedule: {max_concurrent_crawls: 1}",
                                             data_dir=tmp_path / "data"))
    assert run.ids() == ["crawl:a"]
    run.daemon.stop()
    assert run.logged("stopping: waiting up to 1m for crawl a")
    run.exit("crawl:a")
    assert run.ids() == ["crawl:a"]  # b is due, but the daemon is stopping
    assert not run.daemon.children


def test_a_second_stop_request_stops_running_children_at_once(tmp_path):
    run = start_daemon(tmp_path, config_text({"a": None}, "", data_dir=tmp_path / "data"))
    child = run.daemon.children["crawl:a"]
    run.daemon.stop()
    assert not child.stopped
    run.daemon.stop()
    assert child.stopped and run.logged("crawl a: still running after the grace period, stopping it")


@pytest.mark.parametrize("text, problem", [
    ("schedule: {crawl: {every: 6h, cron: '0 * * * *'}}", "schedule.crawl: give exactly one of `every:`"),
    ("schedule: {crawl: {cron: '0 8 * *'}}", "schedule.crawl.cron: expected 5 crontab fields"),
    ("schedule: {digest: '0 8 1 * mon'}", "schedule.digest: '0 8 1 * mon' sets both day of month and day of week"),
    ("schedule: {digest: '0 25 * * mon'}", "schedule.digest: '0 25 * * mon': Error validating expression '25'"),
    ("schedule: {timezone: Europe/Atlantis}", "schedule.timezone: unknown time zone 'Europe/Atlantis'"),
    ("schedule: {max_concurrent_crawls: 0}", "schedule.max_concurrent_crawls: Input should be greater than or equal to 1"),
    ("schedule: {crawl: {evry: 6h}}", "schedule.crawl.evry: unknown key (did you mean 'every'?)"),
    ("schedule: {crawl: {every: 10s}}", "schedule.crawl.every: must be at least 1m"),
])
def test_a_bad_schedule_is_a_config_error_with_its_key_path(text, problem):
    from monitor.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={})
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_a_bad_source_schedule_names_the_source_path():
    from monitor.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_config(config_text({"a": "{cron: '* * * * 8'}"}), env={})
    assert caught.value.problems == [
        "source a: schedule.cron: '* * * * 8': day of week: '8' is not 0-7 or sun-sat"]


def test_deliver_runs_between_crawls_every_few_minutes_and_only_failures_are_logged(tmp_path):
    run = start_daemon(tmp_path, config_text({"a": None}, "schedule: {jitter: 0s, deliver: 5m}", data_dir=tmp_path / "data"))
    launched = lambda: [args for job_id, args, _ in run.launcher.launched if job_id == DELIVER]  # noqa: E731
    assert launched() == []  # not at start: its first time is 5 minutes on
    run.clock.advance(minutes=5)
    run.daemon.start_due()
    assert launched() == [("deliver",)]
    run.exit(DELIVER)
    run.clock.advance(minutes=5)
    run.daemon.start_due()
    run.exit(DELIVER, 1, "repwatch: alerts: slack: HTTP 503, will retry\n")
    assert launched() == [("deliver",)] * 2
    assert [line for line in run.lines if "deliver" in line] == [
        "2026-03-02 12:00:00Z repwatch run: deliver: every 5m, next 2026-03-02 12:05:00Z",
        "2026-03-02 12:10:00Z repwatch run: deliver: failed (exit 1): alerts: slack: HTTP 503, will retry",
    ]


# --- with a queue: due crawls go out in batches, each source's job still its own -----------------------------

QUEUE = "queue: {url: 'redis://127.0.0.1:6379/0', sources_per_task: 3}"


@dataclass
class FakeBatchLauncher(FakeLauncher):
    """Records each batch (its job ids) and the callback that reports each job's exit."""

    batches: list[list[str]] = field(default_factory=list)
    reports: list = field(default_factory=list)

    def launch_batch(self, specs, config_path, report):
        self.batches.append([spec.id for spec in specs])
        self.reports.append(report)
        for spec in specs:
            self.launched.append((spec.id, spec.args, config_path))
        return FakeChild(1000 + len(self.launched))


def start_queued(tmp_path: Path, names: list[str], schedule: str = NO_JITTER, clock: ManualClock | None = None,
                 last_runs: dict[str, datetime] | None = None) -> Run:
    if last_runs:
        record_crawls(tmp_path, last_runs)
    config = tmp_path / "config.yaml"
    config.write_text(config_text({name: None for name in names}, schedule + "\n" + QUEUE, data_dir=tmp_path / "data"))
    clock = clock or ManualClock()
    launcher, lines = FakeBatchLauncher(), []
    daemon = Daemon(config, clock=clock, launcher=launcher, rng=random.Random(3), log=lines.append)
    daemon.begin()
    return Run(daemon, launcher, clock, lines, config)


def test_due_crawls_are_queued_in_batches_and_each_source_is_still_its_own_job(tmp_path):
    run = start_queued(tmp_path, ["a", "b", "c", "d", "e", "f", "g"])
    launcher = run.launcher
    assert launcher.batches == [["crawl:a", "crawl:b", "crawl:c"], ["crawl:d", "crawl:e", "crawl:f"]]
    assert run.ids()[-1] == "crawl:g"  # the one left over goes alone, as a single source's job
    assert run.daemon.schedule.running_crawls() == 7  # running counts sources, not batches
    assert run.daemon.children["crawl:a"] is run.daemon.children["crawl:c"]  # one child for the batch
    for name in "abcdefg":
        assert run.daemon.schedule.jobs[f"crawl:{name}"].last_run == START
        assert run.logged(f"crawl {name}: started (pid ")


def test_a_batchs_result_ends_each_sources_job_with_its_own_exit(tmp_path):
    from monitor.service.queue import exits_from

    run = start_queued(tmp_path, ["a", "b", "c"])
    ids = run.launcher.batches[0]
    result = {"code": 1, "stderr": "…", "timed_out": False, "worker": "w1", "sources": {
        "a": {"code": 0, "stderr": "", "timed_out": False},
        "b": {"code": 1, "stderr": "repwatch: source b failed: crawl ended early: shutdown\n", "timed_out": False},
        "c": {"code": EXIT_LOCKED, "stderr": "repwatch: source c: skipped, another crawl (pid 9 on w2, …) holds "
                                             "its lock\n", "timed_out": False}}}
    for exited in exits_from(ids, {"status": "SUCCESS", "result": result}):
        run.daemon.child_exited(exited)
    assert [line.split(" repwatch run: ", 1)[1] for line in run.lines[-3:]] == [
        "crawl a: finished ok",
        "crawl b: failed (exit 1): source b failed: crawl ended early: shutdown",
        "crawl c: skipped, another crawl holds its lock",
    ]
    assert run.daemon.schedule.running() == [] and not run.daemon.children


def test_a_batch_that_failed_as_a_whole_fails_every_source_in_it(tmp_path):
    from monitor.service.queue import exits_from

    run = start_queued(tmp_path, ["a", "b", "c"])
    meta = {"status": "FAILURE", "result": {"exc_type": "RuntimeError", "exc_message": "boom"}}
    for exited in exits_from(run.launcher.batches[0], meta):
        run.daemon.child_exited(exited)
    assert len(run.logged(": failed (exit 1): the worker could not run it (FAILURE): boom")) == 3
    assert run.daemon.schedule.running() == []


def test_a_source_whose_batch_still_runs_is_skipped_at_its_next_time(tmp_path):
    run = start_queued(tmp_path, ["a", "b", "c"], "schedule: {jitter: 0s, crawl: {every: 1h}}")
    report = run.launcher.reports[0]
    run.clock.advance(hours=1)
    run.daemon.start_due()
    assert len(run.launcher.batches) == 1
    assert run.logged("crawl b: skipped, still running since 2026-03-02 12:00:00Z")
    report(Exited("crawl:b", 0))  # the fan-out reports each source; the daemon hears them through its inbox
    kind, exited = run.daemon.inbox.get_nowait()
    run.daemon.child_exited(exited)
    assert [spec.id for spec in run.daemon.schedule.running() if spec.kind == "crawl"] == ["crawl:a", "crawl:c"]


def test_a_batch_is_filled_with_crawls_whose_time_came_while_their_jitter_runs(tmp_path):
    names = [f"s{i}" for i in range(7)]
    run = start_queued(tmp_path, names, "schedule: {jitter: 5m, max_concurrent_crawls: 8}",
                       last_runs={name: START - timedelta(hours=1) for name in names})
    assert run.launcher.batches == [] and run.ids() == []  # crawled an hour ago: due in 5-6 hours
    jobs = run.daemon.schedule.jobs
    fire = START + timedelta(hours=5)
    assert all(jobs[f"crawl:{n}"].fire == fire for n in names)
    by_due = sorted(names, key=lambda n: jobs[f"crawl:{n}"].due)
    assert jobs[f"crawl:{by_due[0]}"].due > fire  # jittered: each its own time within the 5 minutes
    run.clock.current = fire
    run.daemon.start_due()
    assert run.launcher.batches == []  # nothing is due yet: a batch is only ever started by a due crawl
    first = jobs[f"crawl:{by_due[0]}"].due
    run.clock.current = first
    run.daemon.start_due()
    # The first due crawl goes out with the next two in line, whose time (fire) has come; the rest keep theirs.
    assert run.launcher.batches == [[f"crawl:{n}" for n in by_due[:3]]]
    assert all(jobs[f"crawl:{n}"].last_run == first and jobs[f"crawl:{n}"].fire == fire + timedelta(hours=6)
               for n in by_due[:3])
    assert all(jobs[f"crawl:{n}"].running_since is None and jobs[f"crawl:{n}"].due > first for n in by_due[3:])
    run.clock.current = jobs[f"crawl:{by_due[3]}"].due
    run.daemon.start_due()
    assert run.launcher.batches[-1] == [f"crawl:{n}" for n in by_due[3:6]]


def test_filling_a_batch_keeps_to_the_crawl_cap(clock):
    names = {f"s{i}": None for i in range(6)}
    schedule, _ = make_schedule(config_text(names, "schedule: {jitter: 5m, max_concurrent_crawls: 3}\n"), clock,
                                {f"crawl:{n}": START - timedelta(hours=1) for n in names})
    latest = max((s for s in schedule.jobs.values() if s.spec.kind == "crawl"), key=lambda s: s.due)
    clock.current = latest.due - timedelta(microseconds=1)  # every crawl due but the last, whose time has come
    started = started_ids(schedule)
    assert len(started) == 3  # the cap
    assert schedule.start_early(10) == []
    schedule.finished(started[0])
    assert [spec.id for spec in schedule.start_early(10)] == [latest.spec.id]
    assert schedule.running_crawls() == 3


def test_one_source_per_task_queues_each_crawl_alone_as_before(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(config_text({"a": None, "b": None}, NO_JITTER + "\n" + QUEUE.replace("3}", "1}"),
                                  data_dir=tmp_path / "data"))
    launcher = FakeBatchLauncher()
    daemon = Daemon(config, clock=ManualClock(), launcher=launcher, rng=random.Random(3), log=[].append)
    daemon.begin()
    assert launcher.batches == [] and [job_id for job_id, _, _ in launcher.launched] == ["crawl:a", "crawl:b"]


def test_stopping_after_the_grace_period_stops_a_batch_once_and_names_its_sources(tmp_path):
    run = start_queued(tmp_path, ["a", "b", "c"])
    child = run.daemon.children["crawl:a"]
    run.daemon.stop()
    run.daemon.stop()
    assert child.stopped
    assert run.logged("crawl a, crawl b, crawl c: still running after the grace period, stopping it")


# --- a clock that was ahead ------------------------------------------------------------------------------------


def test_a_crawl_dated_a_year_ahead_does_not_put_off_the_next_crawl_for_a_year(tmp_path):
    record_crawls(tmp_path, {"ahead": START + timedelta(days=365)})
    run = start_daemon(tmp_path, config_text({"ahead": None}, NO_JITTER, data_dir=tmp_path / "data"))
    assert run.daemon.schedule.jobs["crawl:ahead"].due == START + timedelta(hours=6)  # counted from now
    assert run.logged("crawl ahead: every 6h (UTC), next 2026-03-02 18:00:00Z (its last run is dated "
                      "2027-03-02 12:00Z, in the future: a clock that was ahead; counted from now)")


def test_the_newest_crawl_counts_not_the_one_with_the_latest_date(tmp_path):
    # a: crawled while the clock was a year ahead
    record_crawls(tmp_path, {"a": START + timedelta(days=365), "b": START - timedelta(hours=7)})
    from models.db import connect, session_factory
    from models.tables import CrawlRun, Source

    engine = connect(f"sqlite:///{tmp_path / 'data' / 'repwatch.db'}")
    with session_factory(engine).begin() as session:  # crawled again once the clock was right
        source = session.query(Source).filter_by(name="a").one()
        session.add(CrawlRun(source=source, started_at=START - timedelta(hours=1), outcome="ok"))
    engine.dispose()
    run = start_daemon(tmp_path, config_text({"a": None, "b": None}, NO_JITTER, data_dir=tmp_path / "data"))
    assert run.ids() == ["crawl:b"]
    assert run.daemon.schedule.jobs["crawl:a"].due == START + timedelta(hours=5)


def test_a_clock_corrected_while_the_daemon_runs_brings_the_next_crawl_back(tmp_path):
    run = start_daemon(tmp_path, config_text({"a": None}, NO_JITTER, data_dir=tmp_path / "data"))
    run.exit("crawl:a")
    run.clock.advance(days=365)  # NTP steps the clock a year ahead…
    run.daemon.start_due()
    assert run.ids() == ["crawl:a", "crawl:a"]
    run.exit("crawl:a")
    run.clock.current = START + timedelta(hours=1)  # …and back
    run.daemon.start_due()
    assert run.daemon.schedule.jobs["crawl:a"].due == START + timedelta(hours=7)
    assert run.logged("crawl a: the clock went back; next 2026-03-02 19:00:00Z (its last run is dated "
                      "2027-03-02 12:00Z, in the future: a clock that was ahead; counted from now)")
    run.clock.advance(hours=6)
    run.daemon.start_due()
    assert run.ids() == ["crawl:a"] * 3


# --- a digest that did not go out is tried again within the day -------------------------------------------------


MONDAY_8 = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)


def digest_daemon(tmp_path: Path) -> Run:
    run = start_daemon(tmp_path, config_text({}, NO_JITTER, digest=True, data_dir=tmp_path / "data"),
                       ManualClock(MONDAY_8 - timedelta(minutes=1)))
    run.clock.advance(minutes=1)
    run.daemon.start_due()
    return run


def digests(run: Run) -> list[tuple[str, ...]]:
    return [args for job_id, args, _ in run.launcher.launched if job_id == "digest"]


def test_a_failed_digest_is_tried_again_with_backoff_for_the_same_week(tmp_path):
    run = digest_daemon(tmp_path)
    failure = "repwatch: digest for Acme not sent: 451 4.3.0 try later (temporary: try again later)\n"
    tried_at = []
    for _ in range(6):
        tried_at.append(run.clock.now())
        run.exit("digest", 1, failure)
        run.clock.current = run.daemon.schedule.jobs["digest"].retry_at
        run.daemon.start_due()
    run.exit("digest")
    assert [at - MONDAY_8 for at in tried_at] == [timedelta(minutes=m) for m in (0, 5, 15, 35, 75, 135)]
    assert digests(run) == [("digest", "--send", "--week", "2026-W10")] * 7  # the week of the first try
    assert run.logged("digest: failed (exit 1): digest for Acme not sent: 451 4.3.0 try later (temporary: try again "
                      "later); trying again at 08:05:00Z (try 2)")
    state = json.loads((tmp_path / "data" / "scheduler-state.json").read_text())
    assert state == {"digest": {"last_run": MONDAY_8.isoformat(), "week": "2026-W10"}}
    run.clock.advance(days=1)
    run.daemon.start_due()
    assert len(digests(run)) == 7  # sent: nothing more until next Monday
    assert run.daemon.schedule.jobs["digest"].due == MONDAY_8 + timedelta(weeks=1)


def test_retries_stop_a_day_after_the_digest_s_time_and_say_when_the_next_one_is(tmp_path):
    run = digest_daemon(tmp_path)
    while True:
        run.exit("digest", 1, "repwatch: digest for Acme not sent: 421 down\n")
        retry_at = run.daemon.schedule.jobs["digest"].retry_at
        if retry_at is None:
            break
        run.clock.current = retry_at
        run.daemon.start_due()
    assert run.clock.now() <= MONDAY_8 + timedelta(days=1) and len(digests(run)) == 27
    assert run.lines[-1].endswith("digest: failed (exit 1): digest for Acme not sent: 421 down; no more tries before "
                                  "its next time, 2026-03-16 08:00:00Z")
    run.clock.current = MONDAY_8 + timedelta(weeks=1)
    run.daemon.start_due()
    assert digests(run)[-1] == ("digest", "--send", "--week", "2026-W11")  # next week's, on time
