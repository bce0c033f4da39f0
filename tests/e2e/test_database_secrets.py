"""A database password with @, / and : in it, given as ${DB_PASSWORD}: it works, and no output, error, daemon log
line or jobs.log shows any piece of it (PostgreSQL: SQLite has no password)."""
from __future__ import annotations

import json
import queue
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.service.jobs import DELIVER, Exited, ProcessLauncher, job_specs
from tests.cli import run_cli

PASSWORD = "hunter@2secret/pw:x"
PIECES = ("hunter", "2secret", "pw:x", "hunter%40")  # what a half-parsed URL would show as a host or a database


def with_password(database_url: str, *, port: int | None = None) -> str:
    """The test database's URL with `${DB_PASSWORD}` as its password (the local server trusts 127.0.0.1, so any
    password gets in: only a URL read wrongly fails)."""
    url = database_url.replace("postgres@", "postgres:${DB_PASSWORD}@", 1)
    return url.replace(":5432/", f":{port}/") if port else url


def write_config(tmp_path: Path, database: str) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\ndatabase: {json.dumps(database)}\n")
    return config


def shows_none(text: str) -> bool:
    return not any(piece in text for piece in PIECES)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_password_with_an_at_sign_connects_and_is_shown_nowhere(tmp_path, database_url, monkeypatch):
    monkeypatch.setenv("DB_PASSWORD", PASSWORD)  # for the children too, as in the daemon's environment
    config = write_config(tmp_path, with_password(database_url))
    for args in (("status",), ("config", "show"), ("deliver",), ("reviews",)):
        result = run_cli(*args, "--config", str(config))
        assert result.code == 0, (args, result.stderr)
        assert shows_none(result.stdout + result.stderr), args
    shown = run_cli("config", "show", "--config", str(config)).stdout
    assert "database: postgresql+psycopg://postgres:***@127.0.0.1:5432/test" in shown

    # the daemon's child: its whole output goes to jobs.log, its problems to the daemon's log
    jobs_log = tmp_path / "data" / "logs" / "jobs.log"
    (tmp_path / "down").mkdir()
    down = write_config(tmp_path / "down", with_password(database_url, port=1))  # nothing listens on port 1
    for path, code in ((config, 0), (down, 1)):
        (spec,) = [spec for spec in job_specs(load_config(path)) if spec.id == DELIVER]
        exits: queue.SimpleQueue[Exited] = queue.SimpleQueue()
        ProcessLauncher(jobs_log).launch(spec, path, exits.put)
        exited = exits.get(timeout=120)
        assert exited.code == code, exited.stderr
        assert shows_none(exited.stderr)
    assert "repwatch: database error: " in jobs_log.read_text()  # the one that could not connect said why
    assert shows_none(jobs_log.read_text())
