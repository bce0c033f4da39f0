"""Many machines without the machines: the queue: section, the cross-machine locks, and what a worker answers."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, parse_config, redacted
from monitor.service.locks import DatabaseLocks, LockHeld
from tests.cli import run_cli
from tests.monitor.test_config import GOOD

ENV = {"SLACK_BOT_TOKEN": "xoxb-1", "REDIS_PASSWORD": "s3cret"}
QUEUE = "queue:\n  url: redis://:${REDIS_PASSWORD}@redis.internal:6379/0\n"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env=ENV)
    return caught.value.problems


def test_a_queue_section_takes_its_password_from_the_environment_and_never_shows_it():
    config = parse_config(GOOD + QUEUE, env=ENV)
    assert config.queue.url == "redis://:s3cret@redis.internal:6379/0"
    assert (config.queue.name, config.queue.concurrency, config.queue.visibility_timeout) == (
        "repwatch", 2, timedelta(hours=1))
    assert config.queue.sources_per_task == 25
    assert redacted(config)["queue"]["url"] == "redis://:***@redis.internal:6379/0"
    assert parse_config(GOOD, env=ENV).queue is None  # one machine: no queue, no Celery needed


def test_queue_mistakes_are_named_with_their_key_path():
    assert problems(GOOD + QUEUE + "  concurency: 4\n") == ["queue.concurency: unknown key (did you mean 'concurrency'?)"]
    assert problems(GOOD + "queue:\n  url: amqp://guest:guest@rabbit//\n") == [
        "queue.url: must be a redis:// or rediss:// URL, got 'amqp://guest:***@rabbit//'"]
    assert problems(GOOD + "queue:\n  name: x\n") == ["queue.url: required key is missing"]
    assert problems(GOOD + QUEUE + "  sources_per_task: 0\n") == [
        "queue.sources_per_task: Input should be greater than or equal to 1"]
    assert problems(GOOD + QUEUE + "  sources_per_tasks: 5\n") == [
        "queue.sources_per_tasks: unknown key (did you mean 'sources_per_task'?)"]
    # A slow crawl still running when its job is handed out again would be started twice.
    assert problems(GOOD + QUEUE + "  visibility_timeout: 10m\ncrawl:\n  timeout: 15m\n") == [
        "queue.visibility_timeout: must be longer than crawl.timeout (900s), or a crawl still running is handed out twice"]


def test_a_worker_without_a_queue_section_says_what_is_missing(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(GOOD)
    done = run_cli("worker", "--config", str(config), env=ENV)
    assert done.code == 1
    assert f"{config} has no queue: section (url: redis://HOST:6379/0)" in done.stderr


def test_a_job_for_a_source_the_workers_config_lacks_fails_with_one_line_naming_it(tmp_path, monkeypatch):
    pytest.importorskip("celery", reason="Celery is the queue extra: pip install -e '.[dev]'")
    from monitor.service.queue import exited_from
    from monitor.worker import Jobs

    config = tmp_path / "config.yaml"
    config.write_text(GOOD + QUEUE + f"data_dir: {tmp_path / 'data'}\n")

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    result = Jobs(config, load_config(config)).run("crawl:acme-yelp")
    assert result["code"] == 1
    assert f"no source named 'acme-yelp' in {config}; give every machine the same config" in result["stderr"]
    exited = exited_from("crawl:acme-yelp", {"status": "SUCCESS", "result": result})
    assert (exited.code, exited.stderr) == (1, result["stderr"])  # what `repwatch run` logs for it


def test_a_queue_that_cannot_be_reached_is_one_log_line_and_the_job_waits_for_its_next_time(tmp_path, monkeypatch):
    pytest.importorskip("celery", reason="Celery is the queue extra: pip install -e '.[dev]'")
    from monitor.scheduler import Daemon

    config = tmp_path / "config.yaml"
    config.write_text(GOOD + f"data_dir: {tmp_path / 'data'}\nschedule:\n  jitter: 0s\n"
                      "queue:\n  url: redis://:hunter2@127.0.0.1:1/0\n")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    lines: list[str] = []
    daemon = Daemon(config, log=lines.append)
    daemon.begin()
    failed = [line for line in lines if "crawl acme-tp: could not start: cannot queue it on redis://" in line]
    assert failed and "hunter2" not in failed[0], lines
    assert daemon.schedule.running() == []  # not stuck "running": it is queued again at its next time


# --- the same source never crawled on two machines at once ----------------------------------------------------


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_database_lock_is_one_holder_at_a_time_and_says_who_holds_it(database_url):
    first, second = DatabaseLocks(database_url), DatabaseLocks(database_url)
    try:
        first.acquire("acme-tp")
        with pytest.raises(LockHeld) as held:
            second.acquire("acme-tp")
        assert held.value.holder.pid == os.getpid()
        assert datetime.now(UTC) - held.value.holder.started < timedelta(minutes=5)
        second.acquire("acme-other")  # other sources are free
        first.close()
        second.acquire("acme-tp")  # free again once its holder is done
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_killed_holders_database_lock_is_freed_by_the_server(database_url, tmp_path):
    ready = tmp_path / "held"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time, pathlib\n"
        "from monitor.service.locks import DatabaseLocks\n"
        "locks = DatabaseLocks(sys.argv[1]); locks.acquire('acme-tp'); pathlib.Path(sys.argv[2]).touch()\n"
        "time.sleep(600)\n"), database_url, str(ready)], cwd=Path(__file__).resolve().parents[2])
    locks = DatabaseLocks(database_url)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert holder.poll() is None and time.monotonic() < deadline, "the holder never took the lock"
            time.sleep(0.05)
        with pytest.raises(LockHeld) as held:
            locks.acquire("acme-tp")
        assert held.value.holder.pid == holder.pid
        holder.kill()  # SIGKILL: nothing released by the holder itself
        holder.wait()
        deadline = time.monotonic() + 30
        while True:
            try:
                locks.acquire("acme-tp")
                break
            except LockHeld:
                assert time.monotonic() < deadline, "the lock outlived its killed holder"
                time.sleep(0.05)
    finally:
        holder.kill()
        locks.close()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_installations_in_separate_schemas_do_not_share_locks(database_url):
    from sqlalchemy import create_engine, text

    other_schema = database_url.rsplit("%3D", 1)[1] + "_b"
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{other_schema}"'))
    other_url = database_url.rsplit("%3D", 1)[0] + f"%3D{other_schema}"
    try:
        with DatabaseLocks(database_url) as ours, DatabaseLocks(other_url) as theirs:
            ours.acquire("acme-tp")
            theirs.acquire("acme-tp")
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{other_schema}" CASCADE'))
        engine.dispose()


def test_on_sqlite_the_database_locks_leave_it_to_the_file_locks(tmp_path):
    with DatabaseLocks(f"sqlite:///{tmp_path / 'repwatch.db'}") as first, \
            DatabaseLocks(f"sqlite:///{tmp_path / 'repwatch.db'}") as second:
        first.acquire("acme-tp")
        second.acquire("acme-tp")


# --- the daemon's side of the queue -----------------------------------------------------------------------------


@pytest.fixture
def redis_queue():
    url = os.environ.get("REPWATCH_TEST_REDIS_URL")
    if not url:
        pytest.skip("REPWATCH_TEST_REDIS_URL is not set (.ci/run sets it to the local Redis)")
    pytest.importorskip("celery", reason="Celery is the queue extra: pip install -e '.[dev]'")
    import redis
    from uuid import uuid4

    from monitor.config import QueueSettings

    settings = QueueSettings(url=url, name=f"repwatch-test-{uuid4().hex[:10]}", visibility_timeout=timedelta(seconds=1))
    yield settings
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{settings.name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def crawl_spec(timeout: float):
    from monitor.schedules import rule_trigger
    from monitor.service.jobs import JobSpec
    from monitor.config import ScheduleRule

    return JobSpec("crawl:acme-tp", "crawl", ("crawl", "--source", "acme-tp"),
                   rule_trigger(ScheduleRule(every=timedelta(hours=6)), UTC), "every 6h (UTC)", timeout)


def test_the_daemon_hears_a_queued_jobs_exit_from_the_workers_result(redis_queue):
    import queue as queues

    from monitor.service.queue import QueueLauncher

    launcher = QueueLauncher(redis_queue, poll_interval=0.05)
    exits: queues.SimpleQueue = queues.SimpleQueue()
    job = launcher.launch(crawl_spec(600), Path("config.yaml"), exits.put)
    assert job.note == f"queued (task {job.task_id})"
    # What a worker stores when the crawl child exits 1 (a source that failed).
    launcher.app.backend.store_result(job.task_id, {"code": 1, "stderr": "repwatch: source acme-tp failed: boom\n",
                                                    "timed_out": False, "worker": "w1"}, "SUCCESS")
    exited = exits.get(timeout=30)
    assert (exited.job_id, exited.code, exited.stderr) == ("crawl:acme-tp", 1, "repwatch: source acme-tp failed: boom\n")


def test_a_queued_job_with_no_result_in_time_is_reported_failed_and_let_go(redis_queue):
    import queue as queues

    from monitor.service.queue import QueueLauncher

    launcher = QueueLauncher(redis_queue, poll_interval=0.05)
    exits: queues.SimpleQueue = queues.SimpleQueue()
    launcher.launch(crawl_spec(0.5), Path("config.yaml"), exits.put)  # no worker: nobody will answer
    exited = exits.get(timeout=30)
    assert exited.code == 1
    assert exited.stderr.startswith("repwatch: no result from the workers after 2 s: still queued behind other jobs")


# --- batches: several sources in one task, each source's exit its own -------------------------------------------


def test_a_batch_task_carries_source_names_only_and_a_batch_of_one_is_the_plain_crawl_task():
    pytest.importorskip("celery", reason="Celery is the queue extra: pip install -e '.[dev]'")
    from monitor.service.jobs import job_specs
    from monitor.service.queue import CRAWL_BATCH_TASK, CRAWL_TASK, batch_spec, batch_task_for

    config = parse_config(GOOD.replace("      - name: acme-tp", "      - {name: acme-b, kind: trustpilot, url: "
                                       "'https://www.trustpilot.com/review/b.example'}\n      - name: acme-tp"),
                          env=ENV)
    crawls = [spec for spec in job_specs(config) if spec.kind == "crawl"]
    assert batch_task_for(crawls) == (CRAWL_BATCH_TASK, [["acme-b", "acme-tp"]])
    assert batch_task_for(crawls[:1]) == (CRAWL_TASK, ["acme-b"])
    with pytest.raises(ValueError):
        batch_task_for([spec for spec in job_specs(config) if spec.kind != "crawl"])
    batch = batch_spec(crawls)  # the worker's own command, from its own config's specs
    assert batch.args == ("crawl", "--source", "acme-b", "--source", "acme-tp")
    assert batch.timeout == crawls[0].timeout


def exited(code: int, stderr: str = "", timed_out: bool = False):
    from monitor.service.jobs import Exited

    return Exited("crawl:a,b,c", code, stderr, timed_out)


def codes(results: dict) -> dict[str, int]:
    return {name: result["code"] for name, result in results.items()}


def test_a_batch_childs_exit_is_split_by_the_lines_it_wrote_about_each_source():
    pytest.importorskip("celery", reason="Celery is the queue extra: pip install -e '.[dev]'")
    from monitor.service.locks import EXIT_LOCKED
    from monitor.service.queue import split_by_source

    names = ["a", "a.b", "c"]
    assert codes(split_by_source(names, exited(0, "scoring…\n"))) == {"a": 0, "a.b": 0, "c": 0}
    # One source held by another crawl: the others were crawled (exit 0); it alone is "skipped".
    locked = "repwatch: source a.b: skipped, another crawl (pid 9 on w2, started …) holds its lock\n"
    split = split_by_source(names, exited(0, locked))
    assert codes(split) == {"a": 0, "a.b": EXIT_LOCKED, "c": 0}
    assert split["a.b"]["stderr"] == locked and split["a"]["stderr"] == ""
    # One failed (exit 1): its line is its own; a name that is a prefix of another's is not confused with it.
    failed = "repwatch: source a.b failed: robots.txt forbids the source URL\n"
    split = split_by_source(names, exited(1, locked.replace("a.b", "c") + failed))
    assert codes(split) == {"a": 0, "a.b": 1, "c": EXIT_LOCKED}
    assert split["a.b"]["stderr"] == failed
    # A problem about no source in particular (alerts) is every source's, as when each ran alone.
    alerts = "repwatch: alerts: slack: HTTP 503, will retry\n"
    split = split_by_source(names, exited(1, failed + alerts))
    assert codes(split) == {"a": 1, "a.b": 1, "c": 1}
    assert (split["a"]["stderr"], split["a.b"]["stderr"]) == (alerts, failed + alerts)
    # Every source locked: exit 75 for each.
    every = "".join(locked.replace("a.b", name) for name in names)
    assert codes(split_by_source(names, exited(EXIT_LOCKED, every))) == {name: EXIT_LOCKED for name in names}
    # A crash without a word about any source, and a timeout: every source's, with the end of the output.
    crash = split_by_source(names, exited(1, "Traceback (most recent call last):\n  …\nMemoryError\n"))
    assert codes(crash) == {"a": 1, "a.b": 1, "c": 1} and crash["c"]["stderr"].endswith("MemoryError\n")
    assert all(r["timed_out"] and r["code"] == -9 for r in split_by_source(names, exited(-9, "", True)).values())


def test_a_batch_result_becomes_each_sources_exit_and_anything_else_is_shared():
    pytest.importorskip("celery", reason="Celery is the queue extra: pip install -e '.[dev]'")
    from monitor.service.queue import exits_from

    ids = ["crawl:a", "crawl:b"]
    own = {"code": 1, "stderr": "x", "timed_out": False, "worker": "w1",
           "sources": {"a": {"code": 0, "stderr": "", "timed_out": False},
                       "b": {"code": 75, "stderr": "repwatch: source b: skipped…\n", "timed_out": False}}}
    assert [(e.job_id, e.code) for e in exits_from(ids, {"status": "SUCCESS", "result": own})] == [
        ("crawl:a", 0), ("crawl:b", 75)]
    plain = {"code": 1, "stderr": "repwatch: boom\n", "timed_out": False, "worker": "w1"}  # no per-source part
    assert [(e.job_id, e.code, e.stderr) for e in exits_from(ids, {"status": "SUCCESS", "result": plain})] == [
        ("crawl:a", 1, "repwatch: boom\n"), ("crawl:b", 1, "repwatch: boom\n")]
    failed = exits_from(ids, {"status": "FAILURE", "result": {"exc_message": "boom"}})
    assert [(e.job_id, e.code) for e in failed] == [("crawl:a", 1), ("crawl:b", 1)]


def test_a_worker_crawls_a_batch_in_one_child_and_reports_a_locked_and_an_unknown_source_on_their_own(
        tmp_path, monkeypatch):
    pytest.importorskip("celery", reason="Celery is the queue extra: pip install -e '.[dev]'")
    from bench.site import bench_reviews
    from demo.server import SiteServer
    from demo.sitegen import trustpilot_pages
    from monitor.service.locks import EXIT_LOCKED, acquire
    from monitor.worker import Jobs

    names = ["s0", "s1", "s2"]
    with SiteServer(robots_txt="User-agent: *\n") as site:
        for i, name in enumerate(names):
            for path, body in trustpilot_pages(f"{name}.example", bench_reviews(3, seed=i)).items():
                site.set_page(path, body)
        config = tmp_path / "config.yaml"
        config.write_text(f"data_dir: {tmp_path / 'data'}\ncrawl: {{polite: false, download_delay: 0}}\n" + QUEUE
                          + "businesses:\n  - name: Acme\n    sources:\n" + "".join(
                              f"      - {{name: {name}, kind: trustpilot, url: '{site.url}/review/{name}.example'}}\n"
                              for name in names))
        for name, value in ENV.items():
            monkeypatch.setenv(name, value)
        with acquire(tmp_path / "data", "s1"):  # another crawl of s1 on this machine
            result = Jobs(config, load_config(config)).run_batch(["s0", "s1", "s2", "gone"])
        crawled = {request.path.split("/")[-1] for request in site.requests if request.path != "/robots.txt"}
    sources = result["sources"]
    assert list(sources) == ["s0", "s1", "s2", "gone"]
    assert codes(sources) == {"s0": 0, "s1": EXIT_LOCKED, "s2": 0, "gone": 1}, result["stderr"]
    assert sources["s1"]["stderr"].startswith(f"repwatch: source s1: skipped, another crawl (pid {os.getpid()}, ")
    assert f"no source named 'gone' in {config}; give every machine the same config" in sources["gone"]["stderr"]
    assert crawled == {"s0.example", "s2.example"}  # one child crawled both; s1 was left to its holder
    assert result["code"] == 1  # a name was refused; the daemon reads each source's own exit
    assert len(list((tmp_path / "data" / "logs").glob("jobs.log"))) == 1
    assert (tmp_path / "data" / "logs" / "jobs.log").read_text().count("=== ") == 1


def test_the_daemon_hears_each_sources_exit_from_a_queued_batchs_result(redis_queue):
    import queue as queues

    from monitor.service.jobs import JobSpec
    from monitor.service.queue import CRAWL_BATCH_TASK, QueueLauncher

    base = crawl_spec(600)
    specs = [JobSpec(f"crawl:{name}", "crawl", ("crawl", "--source", name), base.trigger, base.schedule, 600)
             for name in ("a", "b")]
    launcher = QueueLauncher(redis_queue, poll_interval=0.05)
    exits: queues.SimpleQueue = queues.SimpleQueue()
    job = launcher.launch_batch(specs, Path("config.yaml"), exits.put)
    assert job.note == f"queued (task {job.task_id}, one of 2 sources)"
    message = launcher.app.backend.client.lrange(f"{redis_queue.name}:{redis_queue.name}", 0, -1)
    assert len(message) == 1 and CRAWL_BATCH_TASK.encode() in message[0]
    launcher.app.backend.store_result(job.task_id, {"code": 0, "stderr": "", "timed_out": False, "worker": "w1",
                                                    "sources": {"a": {"code": 0, "stderr": "", "timed_out": False},
                                                                "b": {"code": 1, "stderr": "repwatch: source b "
                                                                      "failed: boom\n", "timed_out": False}}},
                                      "SUCCESS")
    got = sorted((e.job_id, e.code, e.stderr) for e in (exits.get(timeout=30), exits.get(timeout=30)))
    assert got == [("crawl:a", 0, ""), ("crawl:b", 1, "repwatch: source b failed: boom\n")]


def test_a_queued_digest_carries_the_week_the_daemon_chose_and_a_worker_refuses_a_bad_one(tmp_path, monkeypatch):
    pytest.importorskip("celery", reason="Celery is the queue extra: pip install -e '.[dev]'")
    from dataclasses import replace

    from monitor.service.jobs import DIGEST, job_specs
    from monitor.service.queue import DIGEST_TASK, task_for
    from monitor.worker import Jobs

    digest = "digest: {from: r@example.com, to: [o@example.com], smtp: {host: 127.0.0.1, security: none}}\n"
    config = tmp_path / "config.yaml"
    config.write_text(GOOD + QUEUE + digest + f"data_dir: {tmp_path / 'data'}\n")
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    (spec,) = [spec for spec in job_specs(load_config(config)) if spec.id == DIGEST]
    assert task_for(spec) == (DIGEST_TASK, [])
    assert task_for(replace(spec, args=(*spec.args, "--week", "2026-W10"))) == (DIGEST_TASK, ["2026-W10"])
    refused = Jobs(config, load_config(config)).run(DIGEST, week="2026-W99; rm -rf /")
    assert refused["code"] == 1
    assert refused["stderr"].endswith(": digest: expected an ISO week like 2026-W47, got '2026-W99; rm -rf /'\n")
