"""SIGKILL at fetch, store, score and deliver (bench/crash_harness.py, a few kills): nothing lost, nothing stuck."""
from __future__ import annotations

import sys

import pytest

from bench.crash_harness import POINTS, run_harness

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the harness reads /proc (Linux)")


def test_killed_crawls_lose_nothing_and_duplicate_only_what_slack_had_before_our_commit(tmp_path):
    lines: list[str] = []
    report = run_harness(8, seed=3, workdir=tmp_path, max_streak=3, echo=lines.append)
    summary = report.table() + "\n" + "\n".join(lines)

    for point in POINTS:  # two kills at each point, every score and deliver variant among them
        assert report.points[point].kills >= 2, summary
    assert set(report.points["score"].variants) == {"before", "after"}, summary
    assert set(report.points["deliver"].variants) == {"unseen", "answered"}, summary

    assert report.lost_reviews == 0 and report.lost_alerts == 0, summary
    assert not report.stuck, summary
    assert report.orphans == 0, summary  # no crawl child went on after its command was killed
    assert report.recovery_failures == [], summary
    # A second copy only of a message Slack had accepted when the command died before recording it as sent.
    assert report.duplicates_unexplained == 0, summary
    assert report.duplicates_in_window <= sum(p.in_flight for p in report.points.values()), summary
    assert report.points["deliver"].in_flight >= 1, summary  # the `answered` kill left one in flight
    assert report.ok, summary
