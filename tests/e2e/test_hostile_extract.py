"""Hostile pages through `repwatch extract`: the crawl's limits hold (total time, size on the wire and inflated),
a page costly to scan is read in linear time, and each refusal is one line with exit 1."""
from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest

import spiders.extract
from tests.cli import run_cli, run_process
from tests.e2e.hostile_site import Answer, HostileSite, MiB, gzip_of_zeros
from tests.limits import finishes

NO_SPIDER = "repwatch: no spider recognises"


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_saved_page_of_unclosed_canonical_links_is_read_in_linear_time(tmp_path):
    page = tmp_path / "links.html"
    page.write_text("<link rel=canonical " * (256 * 1024 // 20))  # all of what is scanned for the canonical URL
    done = []
    # A hard limit far above linear (milliseconds) and far below what the regex this replaced took (hours).
    assert finishes(lambda: done.append(run_cli("extract", str(page))), seconds=60)
    assert done[0].code == 1 and one_line(done[0].stderr).startswith(NO_SPIDER)


def test_an_endless_file_is_read_up_to_the_page_limit_only():
    # A child process with a 4 GiB address space: reading /dev/zero whole would end in a MemoryError, not a hang.
    limit = ("import resource, os, sys; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30));"
             " os.execv(sys.argv[1], sys.argv[1:])")
    done = run_process("extract", "/dev/zero", launcher=[sys.executable, "-c", limit])
    assert done.code == 1
    assert one_line(done.stderr) == "repwatch: cannot read /dev/zero: over the 20 MiB limit of a page (DOWNLOAD_MAXSIZE)"


def drip() -> Iterator[bytes]:
    """One byte every 20 ms: each read returns at once, so a per-read timeout never fires (600 bytes, then it ends)."""
    yield b"<html><body>"
    for _ in range(600):
        time.sleep(0.02)  # the hostile server's pace, not a wait for anything
        yield b" "


def test_a_server_that_drips_its_answer_is_given_up_at_the_total_deadline(monkeypatch):
    monkeypatch.setattr(spiders.extract, "DOWNLOAD_TIMEOUT", 2)  # the crawl's 30 s, shortened for the test
    with HostileSite() as site:
        site.answers["/drip"] = Answer(200, drip, {"Content-Type": "text/html"})
        done = run_cli("extract", f"{site.url}/drip")
    assert done.code == 1
    assert one_line(done.stderr) == f"repwatch: cannot fetch {site.url}/drip: no whole answer within 2 s (DOWNLOAD_TIMEOUT)"


def test_a_compression_bomb_is_stopped_at_the_size_limit():
    length, bomb = gzip_of_zeros(64 * MiB)
    with HostileSite() as site:
        site.answers["/bomb"] = Answer(200, bomb, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, length)
        done = run_cli("extract", f"{site.url}/bomb")
    assert done.code == 1
    line = one_line(done.stderr)
    assert line.startswith(f"repwatch: cannot fetch {site.url}/bomb: compression bomb, ")
    assert line.endswith(" bytes inflate past the 20 MiB download limit (DOWNLOAD_MAXSIZE); not read")


@pytest.mark.parametrize("declared", [True, False], ids=["with Content-Length", "streamed"])
def test_a_page_over_the_size_limit_is_refused(declared):
    body = b"<html>" + b" " * (21 * MiB)
    with HostileSite() as site:
        chunks = lambda: (body[i : i + MiB] for i in range(0, len(body), MiB))  # noqa: E731
        site.answers["/big"] = Answer(200, chunks, {"Content-Type": "text/html"}, len(body) if declared else None)
        done = run_cli("extract", f"{site.url}/big")
    assert done.code == 1
    expected = (f"{len(body):,} bytes, over the 20 MiB download limit (DOWNLOAD_MAXSIZE)" if declared
                else "the page grew past the 20 MiB download limit (DOWNLOAD_MAXSIZE) while downloading")
    assert one_line(done.stderr) == f"repwatch: cannot fetch {site.url}/big: {expected}"


def test_an_ordinary_gzipped_page_is_still_read():
    import gzip

    from tests.e2e.test_hostile_pages import json_ld_page

    page = json_ld_page([{"@id": "g1", "reviewBody": "Cold coffee."}]).encode()
    with HostileSite() as site:
        site.answers["/reviews"] = Answer(200, gzip.compress(page), {"Content-Type": "text/html; charset=utf-8",
                                                                     "Content-Encoding": "gzip"})
        done = run_cli("extract", f"{site.url}/reviews")
    assert done.code == 0, done.stderr
    assert '"external_id": "g1"' in done.stdout and '"body": "Cold coffee."' in done.stdout
