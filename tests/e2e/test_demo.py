"""`python -m demo` (`make demo`) end to end: the crawl, the alerts with their work buttons, and one "Take it" click
that travels as a real one does (Socket Mode → `repwatch slack-listen` → the alert edited in place, the trail)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_shows_alerts_with_buttons_and_one_click_that_takes_a_complaint(tmp_path):
    env = {**os.environ, "DEMO_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "demo"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=240)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "data" / "repwatch.db").exists()  # the demo's database went where it was told

    sent = out.split("3. the Slack messages it sent")[1].split("4. crawl again")[0]
    assert sent.count("[ Take it ]") >= 5 and "[ Not a complaint ]" in sent and "[ Edit draft ]" in sent
    assert "Status: new: nobody has taken it" in sent

    click = out.split("6. a click in Slack")[1].split("7. what still waits")[0]
    assert "repwatch slack-listen: connected to Slack (connection 1)" in click
    taken = re.search(r"slack: maria took review #(\d+)", click)
    assert taken, click
    review = taken[1]
    edited = click.split("(update)")[1]
    assert "taken by maria" in edited and "[ Take it ]" in edited  # edited in place; the buttons stay
    assert f"review #{review}" in edited
    assert re.search(r"│ maria\s+│ slack\s+│ assign: maria\s+│", click)
    assert re.search(r"│ maria\s+│ slack\s+│ status: new → assigned\s+│", click)
    assert "repwatch slack-listen: stopped" in click
    assert "Demo finished" in out
