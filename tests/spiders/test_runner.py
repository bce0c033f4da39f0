"""The crawl child: which spider class a plan's `kind` gets."""
from __future__ import annotations

import pytest

from spiders.registry import load_spiders
from spiders.runner import spider_class


def test_each_kind_gets_the_registered_spider():
    for name, spider in load_spiders().items():
        assert spider_class(name) is spider


def test_an_unknown_kind_is_a_key_error():
    with pytest.raises(KeyError):
        spider_class("no_such_site")
    with pytest.raises(KeyError):
        spider_class("../etc")


def test_the_child_imports_only_the_spider_it_runs():
    """Importing every spider module (extruct, BeautifulSoup, …) cost each crawl ~0.25 s of start-up."""
    import subprocess
    import sys

    code = (
        "import sys; from spiders.runner import spider_class; "
        "assert spider_class('trustpilot').__module__ == 'spiders.sites.trustpilot'; "
        "print(sorted(m for m in sys.modules if m.startswith(('spiders.sites.', 'spiders.generic.', 'extruct'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['spiders.sites.trustpilot']"


def test_a_crawl_that_could_not_write_its_pages_or_reviews_is_never_an_ok_run():
    from spiders.runner import run_outcome

    fine = {"repwatch/pages": 3, "repwatch/items": 60}
    assert run_outcome(fine, "finished", had_reviews=True) == ("ok", None)
    # The HTTP cache (or anything else local) failed a page: the site is not to blame, and the run is not ok.
    disk = {**fine, "repwatch/fetch_errors": 1, "repwatch/last_error": "disk I/O error at https://x.example/?page=2"}
    outcome, error = run_outcome(disk, "finished", had_reviews=True)
    assert outcome == "failed" and error.startswith("cannot write to the data directory (disk full?): disk I/O error")
    # A batch of reviews that could not be stored.
    store = {**fine, "repwatch/store_errors": 2, "repwatch/store_error": "database or disk is full"}
    assert run_outcome(store, "finished", had_reviews=True)[0] == "failed"
    other = {**fine, "repwatch/store_errors": 1, "repwatch/store_error": "UNIQUE constraint failed: review.id"}
    assert run_outcome(other, "finished", had_reviews=True) == (
        "failed", "1 batch of reviews could not be stored: UNIQUE constraint failed: review.id")
    # A site's own error on one page stays an ok run with a note (retry before alarming).
    flaky = {**fine, "repwatch/fetch_errors": 1, "repwatch/last_error": "HTTP 500 at https://x.example/?page=2"}
    assert run_outcome(flaky, "finished", had_reviews=True) == ("ok", "some pages failed: HTTP 500 at https://x.example/?page=2")


def test_the_crawl_child_dies_with_the_command_that_started_it(tmp_path):
    """SIGKILL leaves no chance to clean up: the kernel (PR_SET_PDEATHSIG) or a watchdog ends the child."""
    import os
    import signal
    import subprocess
    import sys
    import time

    if not sys.platform.startswith("linux"):
        pytest.skip("/proc")
    parent = (
        "import os, subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import os, sys, time; from spiders.runner import "
        "die_with_parent; die_with_parent(int(sys.argv[1])); print(os.getpid(), flush=True); time.sleep(60)', "
        "str(os.getpid())], start_new_session=True, stdout=sys.stdout)\n"
        "child.wait()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # a bound, not a pause: the kernel signals at once
        try:
            with open(f"/proc/{child}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    break
        except FileNotFoundError:
            break
        time.sleep(0.01)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the crawl child outlived its parent")
