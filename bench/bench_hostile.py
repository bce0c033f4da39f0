"""Hostile inputs of issue 18, timed and measured: review markup with unclosed tags (item 1), deeply nested
microdata (item 9) and `repwatch extract` on hostile files and servers (item 13).

    .venv/bin/python -m bench.bench_hostile                            # this tree
    .venv/bin/python -m bench.bench_hostile --tree /tmp/old-repwatch   # another tree (the code before a change)
    .venv/bin/python -m bench.bench_hostile --only markup-256k --timeout 300

Each case is a child process running the given tree's code (PYTHONPATH), killed at --timeout (default 120 s):
wall seconds (start-up included, ~0.3-1 s) and peak RSS (VmHWM of the child, sampled every 20 ms; see
bench/bench_crawl.run_child), and what the child printed last. `repwatch extract` children run under a 4 GiB
address-space limit, so that reading /dev/zero whole ends in a MemoryError rather than in the machine's memory.
Servers are local (127.0.0.1), in this process. Results go to --out (default bench/out/hostile.json).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.bench_crawl import REPO, ChildRun, run_child
from tests.e2e.hostile_site import Answer, HostileSite, MiB, gzip_of_zeros

AS_LIMIT = (
    "import resource, os, sys; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30));"
    " os.execv(sys.argv[1], sys.argv[1:])"
)
MARKUP = """
import sys, time
from spiders.pipelines.normalize import clean_text
markup = "<p>x</p>" + "<script>" * (int(sys.argv[1]) // 8)
started = time.perf_counter()
text = clean_text(markup)
print(f"clean_text of {len(markup):,} characters: {time.perf_counter() - started:.3f} s -> {text!r}")
"""
MICRODATA = """
import sys, time
from scrapy.http import HtmlResponse
from spiders.generic.schema_org import SchemaOrgSpider
depth = int(sys.argv[1])
json_ld = ('<script type="application/ld+json">{"@type": "Review", "@id": "j1", "reviewBody": "Burnt toast.",'
           ' "reviewRating": {"ratingValue": 1}}</script>')
item = '<div itemprop="about" itemscope itemtype="https://schema.org/Thing"><span itemprop="name">n</span>'
body = f"<html><head>{json_ld}</head><body>{item * depth}{'</div>' * depth}</body></html>".encode()
response = HtmlResponse("https://cafe.example/", body=body, encoding="utf-8")
started = time.perf_counter()
try:
    reviews = [r.external_id for r in SchemaOrgSpider(url=response.url).parse_reviews(response)]
except BaseException as exc:
    reviews = f"{type(exc).__name__} (JSON-LD reviews lost)"
print(f"{depth} levels: {time.perf_counter() - started:.3f} s, reviews read: {reviews}")
"""


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def extract(*args: str) -> list[str]:
    return [sys.executable, "-c", AS_LIMIT, sys.executable, "-m", "monitor", "extract", *args]


def drip() -> Iterator[bytes]:
    """One byte a second for 10 minutes: every read returns within a second."""
    yield b"<html><body>"
    for _ in range(600):
        time.sleep(1)
        yield b" "


def cases(site: HostileSite, scratch: Path) -> dict[str, Callable[[], list[str]]]:
    canonical = scratch / "canonical.html"
    canonical.write_text("<link rel=canonical " * (20 * 1024 // 20))  # the 20 KB file
    bomb_length, bomb = gzip_of_zeros(1024 * MiB)
    site.answers["/bomb"] = Answer(200, bomb, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, bomb_length)
    site.answers["/drip"] = Answer(200, drip, {"Content-Type": "text/html"})
    return {
        "markup-64k": lambda: python(MARKUP, str(64 * 1024)),
        "markup-256k": lambda: python(MARKUP, str(256 * 1024)),
        "markup-1.1m": lambda: python(MARKUP, str(1100 * 1024)),
        "microdata-600": lambda: python(MICRODATA, "600"),
        "microdata-1000": lambda: python(MICRODATA, "1000"),
        "extract-canonical-20k": lambda: extract(str(canonical)),
        "extract-gzip-bomb-1g": lambda: extract(f"{site.url}/bomb"),
        "extract-dev-zero": lambda: extract("/dev/zero"),
        "extract-drip-1b-per-s": lambda: extract(f"{site.url}/drip"),
    }


def last_line(run: ChildRun) -> str:
    lines = (run.stdout.strip() or run.stderr.strip()).splitlines()
    return lines[-1][:160] if lines else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=REPO, help="the source tree to run (default: this one)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a case is killed")
    parser.add_argument("--only", action="append", help="run only this case (repeatable)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "hostile.json")
    options = parser.parse_args()
    results = {}
    with HostileSite() as site, tempfile.TemporaryDirectory() as scratch:
        for name, argv in cases(site, Path(scratch)).items():
            if options.only and name not in options.only:
                continue
            run = run_child(argv(), options.timeout, tree=options.tree.resolve())
            killed = run.returncode < 0 and run.seconds >= options.timeout
            outcome = f"killed at {options.timeout:g} s" if killed else last_line(run)
            results[name] = {"seconds": round(run.seconds, 2), "peak_rss_mb": round(run.peak_rss_mb),
                             "exit": run.returncode, "outcome": outcome}
            print(f"{name:24} {run.seconds:8.2f} s {run.peak_rss_mb:8.0f} MB  exit {run.returncode:3}  {outcome}",
                  flush=True)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps({"tree": str(options.tree), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
