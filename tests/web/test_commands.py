"""`repwatch web` and `repwatch run` with web.start_with_run, as real processes: they serve the inbox and stop on
SIGTERM."""
from __future__ import annotations

import re

import httpx

from tests.cli import run_cli, start_process

URL = re.compile(r"the inbox is at (http://\S+?)/")


def write_config(tmp_path, **web: str):
    settings = "".join(f"\n  {key}: {value}" for key, value in {"port": "0", **web}.items())
    path = tmp_path / "config.yaml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\nweb:{settings}\n", encoding="utf-8")
    return path


def test_repwatch_web_serves_the_inbox_until_sigterm(tmp_path):
    config = write_config(tmp_path)
    web = start_process("web", "--config", str(config))
    try:
        url = URL.search(web.wait_for("the inbox is at")[0])[1]
        assert web.wait_for("nobody can log in yet: `repwatch users add NAME --role owner`")
        assert httpx.get(f"{url}/healthz").text == "ok\n"
        login = httpx.get(f"{url}/")
        assert login.status_code == 303 and login.headers["location"] == "/login?next=%2F"
    finally:
        web.terminate()
    assert web.proc.returncode == 0


def test_repwatch_web_says_so_when_it_cannot_listen(tmp_path):
    config = write_config(tmp_path)
    result = run_cli("web", "--config", str(config), "--host", "192.0.2.1", "--port", "8080")
    assert result.code == 1
    assert result.stderr.startswith("repwatch: cannot listen on 192.0.2.1:8080: "), result.stderr


def test_repwatch_run_serves_the_inbox_when_configured(tmp_path):
    config = write_config(tmp_path, start_with_run="true")
    daemon = start_process("run", "--config", str(config))
    try:
        url = URL.search(daemon.wait_for("web: the inbox is at")[0])[1]
        assert httpx.get(f"{url}/healthz").text == "ok\n"
    finally:
        daemon.terminate()
    assert daemon.proc.returncode == 0
    assert daemon.wait_for("repwatch run: stopped")
