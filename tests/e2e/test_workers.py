"""Many machines: `repwatch run` queues a cycle on Redis, two `repwatch worker`s run it, one is killed mid-crawl."""
from __future__ import annotations

import json
import os
import re
import signal
import textwrap
import time
from collections import Counter
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import create_engine, func, select

from demo.sitegen import trustpilot_pages, trustpilot_path
from demo.slack_receiver import SlackReceiver
from models.tables import CrawlRun, Delivery, Review, Source
from monitor.service.locks import EXIT_LOCKED, DatabaseLocks
from tests.cli import RunningProcess, run_cli, start_process
from tests.e2e.conftest import TOKEN, site_review
from tests.e2e.test_daemon import GatedSite

REDIS_URL_ENV = "REPWATCH_TEST_REDIS_URL"
WAIT = 90  # seconds: an upper bound for one step awaited here, never a pause
CYCLE = 240  # seconds: an upper bound for the whole cycle on a busy two-core machine (about 60 s on a quiet one)
SOURCES = 20
PER_TASK = 4  # sources per queued task: five batches, each crawled by one `repwatch crawl --source …` child
HELD = "site-00"  # queued first; the site holds its second page until the worker crawling it has been killed
# Seconds the queue leaves a job unacknowledged before handing it to another worker: short, so the test waits
# little for the killed worker's job, yet several times a crawl here, so no living worker's job is handed out twice.
VISIBILITY = 30

pytestmark = pytest.mark.postgres


@pytest.fixture
def queue(request):
    """A Redis URL and a queue name of this test's own (its keys are removed afterwards)."""
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        pytest.skip(f"{REDIS_URL_ENV} is not set (.ci/run sets it to the local Redis)")
    pytest.importorskip("celery", reason="Celery is the queue extra: pip install -e '.[dev]'")
    import redis

    name = f"repwatch-test-{uuid4().hex[:10]}"
    yield url, name
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def start(config: Path, verb: str) -> RunningProcess:
    """`repwatch run` or `repwatch worker` of the machine whose config this is, as a child process."""
    return start_process(verb, "--config", str(config), env={"SLACK_BOT_TOKEN": TOKEN}, cwd=config.parent, timeout=WAIT)


def write_config(folder: Path, *, site: str, slack: str, database: str, redis: str, queue: str) -> Path:
    """One machine's config.yaml: the same database, queue, notifiers and sources; its own data_dir."""
    folder.mkdir()
    sources = "".join(
        f"      - name: site-{i:02d}\n        kind: trustpilot\n        url: {site}/review/site-{i:02d}.example\n"
        for i in range(SOURCES)
    )
    config = folder / "config.yaml"
    config.write_text(textwrap.dedent(f"""\
        data_dir: {folder / 'data'}
        database: "{database}"
        crawl:
          polite: false
          download_delay: 0
          timeout: 25s
        alerting:
          flood_threshold: 1000
          spike: null
        schedule:
          jitter: 0s
        queue:
          url: {redis}
          name: {queue}
          concurrency: 1
          visibility_timeout: {VISIBILITY}s
          sources_per_task: {PER_TASK}
        notifiers:
          slack:
            kind: slack
            token: ${{SLACK_BOT_TOKEN}}
            channel: "#reviews"
            api_url: {slack}
            min_interval: 0
        businesses:
          - name: Acme Coffee
            notify: [slack]
            sources:
        """) + sources)
    return config


def lock_holder(data_dir: Path, source: str) -> int | None:
    """The pid a machine's flock note names for this source (the `repwatch crawl` child of that machine's worker)."""
    try:
        return json.loads((data_dir / "locks" / f"{source}.lock").read_text() or "{}").get("pid")
    except (OSError, ValueError):
        return None


def crawl_runs(database_url: str) -> list[tuple[str, str, str | None]]:
    engine = create_engine(database_url)
    with engine.connect() as db:
        runs = db.execute(select(Source.name, CrawlRun.outcome, CrawlRun.error).join(CrawlRun.source)
                          .order_by(CrawlRun.id)).all()
    engine.dispose()
    return [tuple(run) for run in runs]


def cycle_done(database_url: str, messages: int) -> bool:
    """Every source has an ok crawl, none is still running (the killed one was settled), every alert is out."""
    runs = crawl_runs(database_url)
    crawled = {name for name, outcome, _ in runs if outcome == "ok"}
    return len(crawled) == SOURCES and all(outcome != "running" for _, outcome, _ in runs) and messages >= SOURCES


def describe(database_url: str, messages: int, processes: list[RunningProcess]) -> str:
    """The state a stuck cycle was in: runs, alerts, and what the daemon and the workers said."""
    lines = [f"{messages} Slack messages; crawl runs: {crawl_runs(database_url)}"]
    for process in processes:
        lines += [f"  {process.proc.args[3]} {process.proc.pid}: {line}" for line in process.lines
                  if "repwatch" in line and "queued (task" not in line and "every 6h" not in line]
    return "\n".join(lines)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def until(condition, what, within: float = WAIT):
    """Poll observable state until `condition()` is truthy, within `within` seconds; `what` may be a callable
    that describes the state when giving up."""
    deadline = time.monotonic() + within
    while not (value := condition()):
        assert time.monotonic() < deadline, f"gave up waiting for {what() if callable(what) else what}"
        time.sleep(0.05)
    return value


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_worker_killed_mid_crawl_loses_nothing_and_doubles_nothing(tmp_path, database_url, queue):
    redis_url, queue_name = queue
    processes: list[RunningProcess] = []
    with GatedSite(robots_txt="User-agent: *\n") as site, SlackReceiver(token=TOKEN) as slack:
        for i in range(SOURCES):
            # Two pages each: one recent 1-star review (an alert) and two old 5-star ones.
            reviews = [site_review(100 * i, 1, 3)] + [site_review(100 * i + n, 5, 100 + n) for n in (1, 2)]
            for path, body in trustpilot_pages(f"site-{i:02d}.example", reviews, per_page=2).items():
                site.set_page(path, body)
        gate = site.hold(trustpilot_path(f"{HELD}.example", 2))
        machines = {name: write_config(tmp_path / name, site=site.url, slack=slack.api_url, database=database_url,
                                       redis=redis_url, queue=queue_name) for name in ("run", "a", "b", "c")}
        try:
            workers = {name: start(machines[name], "worker") for name in ("a", "b")}
            processes += workers.values()
            for worker in workers.values():
                worker.wait_for("ready: 1 job(s) at once from queue")
            daemon = start(machines["run"], "run")
            processes.append(daemon)
            queued = daemon.wait_for(": queued (task ", SOURCES)
            assert len(queued) == SOURCES  # one line per source, each the job of its own
            tasks = Counter(re.search(r"\(task ([^,)]+)", line)[1] for line in queued)
            assert sorted(tasks.values()) == [PER_TASK] * (SOURCES // PER_TASK), queued  # in batches

            # The held crawl has fetched page 1 and waits for page 2: find the worker it runs under, kill it.
            assert gate.arrived.wait(WAIT)
            victim, crawler = until(lambda: next(((name, pid) for name in workers if (pid := lock_holder(
                machines[name].parent / "data", HELD)) and alive(pid)), None), f"the worker crawling {HELD}")
            with open(f"/proc/{crawler}/stat") as stat:
                assert int(stat.read().rsplit(")", 1)[1].split()[1]) == workers[victim].proc.pid  # its child
            workers[victim].proc.send_signal(signal.SIGKILL)
            workers[victim].proc.wait(WAIT)
            until(lambda: not alive(crawler), "the killed worker's crawl to die with it")
            gate.opened.set()
            replacement = start(machines["c"], "worker")
            processes.append(replacement)

            # The queue hands the killed worker's job to a living worker, and the cycle completes.
            until(lambda: cycle_done(database_url, len(slack.messages)),
                  lambda: "every source crawled and alerted:\n" + describe(database_url, len(slack.messages), processes),
                  CYCLE)
            daemon.wait_for(f"crawl {HELD}: finished ok")  # the daemon got the redelivered job's result
            # Each source's job ended on its own: one `finished ok` per source, the killed batch's included.
            assert len(daemon.wait_for(": finished ok", SOURCES)) == SOURCES
            rescuers = [name for name in ("a", "b", "c")
                        if name != victim and (machines[name].parent / "data" / "locks" / f"{HELD}.lock").exists()]
            assert rescuers, f"{HELD} was not crawled again after {victim} was killed"
        finally:
            gate.opened.set()
            for process in processes:
                process.terminate()

        engine = create_engine(database_url)
        with engine.connect() as db:
            runs = db.execute(select(Source.name, CrawlRun.outcome, CrawlRun.error).join(CrawlRun.source)
                              .order_by(CrawlRun.id)).all()
            stored = db.scalar(select(func.count()).select_from(Review))
            distinct = db.scalar(select(func.count()).select_from(
                select(Review.source_id, Review.external_id).distinct().subquery()))
            negative = set(db.scalars(select(Review.id).where(Review.rating == 1)))
            deliveries = db.execute(select(Delivery.review_id, Delivery.status)).all()
        engine.dispose()
        messages = slack.messages

    # Every source crawled: its latest run ok; the only failures are the runs the kill interrupted.
    by_source: dict[str, list[str]] = {}
    for name, outcome, _ in runs:
        by_source.setdefault(name, []).append(outcome)
    assert sorted(by_source) == [f"site-{i:02d}" for i in range(SOURCES)]
    assert all(outcomes[-1] == "ok" for outcomes in by_source.values()), by_source
    assert by_source[HELD] == ["failed", "ok"]
    assert all(error.startswith("interrupted: ") for _, outcome, error in runs if outcome != "ok"), runs
    # Every review stored once.
    assert (stored, distinct) == (3 * SOURCES, 3 * SOURCES)
    # Every alert delivered once: one Slack message per negative review, none twice.
    assert len(negative) == SOURCES
    assert sorted(review_id for review_id, _ in deliveries) == sorted(negative)
    assert {status for _, status in deliveries} == {"sent"}
    alerted = Counter(review_id for message in messages
                      for review_id in {int(n) for n in re.findall(r"review #(\d+)", json.dumps(message))})
    assert alerted == Counter({review_id: 1 for review_id in negative})
    assert len(messages) == SOURCES


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_source_being_crawled_on_another_machine_is_skipped_with_exit_75(e2e, database_url):
    # Another machine: another data_dir, so no flock stands in the way; only the shared database knows.
    e2e.config.write_text(e2e.config.read_text() + f'database: "{database_url}"\n')
    e2e.publish([site_review(1, 1, 3)])
    with DatabaseLocks(database_url) as elsewhere:
        elsewhere.acquire("acme-trustpilot")
        skipped = e2e.crawl("--source", "acme-trustpilot")
    assert skipped.code == EXIT_LOCKED
    assert f"repwatch: source acme-trustpilot: skipped, another crawl (pid {os.getpid()}, started " in skipped.stderr
    assert e2e.page_requests() == []
    crawled = e2e.crawl("--source", "acme-trustpilot")  # free again once that machine is done
    assert crawled.code == 0, crawled.stderr
    assert len(e2e.slack.messages) == 1


def test_status_shows_the_jobs_waiting_on_the_queue_and_the_workers_that_answer(tmp_path, queue, monkeypatch):
    from monitor.config import load_config
    from monitor.service.queue import celery_app

    redis_url, queue_name = queue
    config = write_config(tmp_path / "machine", site="http://127.0.0.1:9", slack="http://127.0.0.1:9/api/",
                          database=f"sqlite:///{tmp_path / 'repwatch.db'}", redis=redis_url, queue=queue_name)
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    app = celery_app(load_config(config).queue)
    for _ in range(2):  # what `repwatch run` queues while no worker is up
        app.send_task("repwatch.deliver")

    def status() -> str:
        shown = run_cli("status", "--config", str(config), env={"COLUMNS": "300"})
        assert shown.code == 0, shown.stderr
        return next(line for line in shown.stdout.splitlines() if line.startswith("queue: "))

    assert status() == f"queue: {redis_url}: 2 waiting, 0 running; no worker answered"
    worker = start(config, "worker")
    try:
        name = re.search(r"(repwatch-\d+@\S+) ready", worker.wait_for(" ready.")[0])[1]
        assert f"1 worker answered: {name}" in status()
    finally:
        worker.terminate()

    unreachable = config.read_text().replace(redis_url, "redis://:s3cret@127.0.0.1:9/0")
    config.write_text(unreachable)
    line = status()
    assert line.startswith("queue: cannot reach redis://:***@127.0.0.1:9/0: ") and "s3cret" not in line
