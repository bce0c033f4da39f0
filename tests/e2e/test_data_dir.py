"""What repwatch keeps in data_dir: readable by its owner only, and a database it cannot trust refused in one line."""
from __future__ import annotations

import json
import queue
import stat
from pathlib import Path

from sqlalchemy import create_engine, text

from models.db import HEAD_REVISION, connect, migrate
from monitor.config import load_config
from monitor.service.jobs import DELIVER, Exited, ProcessLauncher, job_specs
from tests.cli import run_cli
from tests.e2e.conftest import TOKEN, site_review


def modes(root: Path) -> dict[str, str]:
    """Every file and folder under root (root included) with its permission bits."""
    return {str(path.relative_to(root.parent)): oct(stat.S_IMODE(path.stat().st_mode))
            for path in [root, *root.rglob("*")]}


def test_a_crawl_and_a_daemon_job_leave_every_file_0600_and_every_folder_0700(e2e, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)  # for the daemon's child, as the daemon's own environment
    e2e.publish([site_review(1, 1, hours_ago=2)])
    crawled = e2e.crawl()
    assert crawled.code == 0, crawled.stderr
    data = e2e.tmp / "data"
    # the daemon's child for `repwatch deliver`, whose output goes to jobs.log
    (spec,) = [spec for spec in job_specs(load_config(e2e.config)) if spec.id == DELIVER]
    exits: queue.SimpleQueue[Exited] = queue.SimpleQueue()
    ProcessLauncher(data / "logs" / "jobs.log").launch(spec, e2e.config, exits.put)
    assert exits.get(timeout=60).code == 0  # reported once its output is in jobs.log
    shown = modes(data)
    for name in ("data/repwatch.db", "data/logs/crawl.log", "data/logs/jobs.log", "data/locks/_outbox.lock",
                 "data/locks/acme-trustpilot.lock", "data/httpcache/httpcache.sqlite"):
        assert name in shown, sorted(shown)
    assert {name: mode for name, mode in shown.items() if mode not in ("0o600", "0o700")} == {}
    assert {mode for name, mode in shown.items() if (data.parent / name).is_dir()} == {"0o700"}


def test_an_empty_database_file_is_refused_and_left_as_it_is(e2e):
    e2e.publish([site_review(n, 1, hours_ago=200 + n) for n in range(5)])
    database = e2e.tmp / "data" / "repwatch.db"
    database.parent.mkdir()
    database.touch()  # a truncated file, or a restore that failed
    crawled = e2e.crawl()
    assert crawled.code == 1
    assert crawled.stderr.strip().splitlines() == [
        f"repwatch: {database} is empty (0 bytes), not a repwatch database: restore it from a backup, or delete it "
        "to start a new one (whose first crawls alert only on recent reviews)"]
    assert database.stat().st_size == 0 and e2e.page_requests() == [] and e2e.slack.messages == []
    database.unlink()
    assert e2e.crawl().code == 0  # deleted on purpose: a new database and its baseline


def test_a_database_a_newer_repwatch_wrote_is_refused_in_one_line(tmp_path, database_url):
    engine = connect(database_url)
    migrate(engine)
    with engine.begin() as db:
        db.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\ndatabase: {json.dumps(database_url)}\n")
    for verb in ("status", "deliver", "reviews"):
        result = run_cli(verb, "--config", str(config), env={"SLACK_BOT_TOKEN": TOKEN})
        assert result.code == 1, verb
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("repwatch: this database (") and line.endswith(
            f") was written by a newer repwatch (schema 0099; this one knows up to {HEAD_REVISION}): install that "
            "version or a later one"), line
    engine = create_engine(database_url)
    with engine.connect() as db:
        assert db.scalar(text("SELECT version_num FROM alembic_version")) == "0099"  # left as it was
    engine.dispose()
