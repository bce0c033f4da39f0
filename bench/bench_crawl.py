"""Crawl benchmark: a bare Scrapy spider vs `repwatch crawl` on the same generated local site, then an unchanged recrawl."""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.site import (
    REAL_COMPLAINT_SHARE,
    bench_reviews,
    build_site,
    complaint_worded_share,
    start_path,
)
from demo.server import SiteServer

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out" / "crawl.json"
ROBOTS = "User-agent: *\nAllow: /\n"


@dataclass
class ChildRun:
    returncode: int
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str


class _Counted:
    """A handler's socket file, counting the bytes that go through it into its server's totals."""

    def __init__(self, file: object, server: CountingServer, which: str):
        self._file = file
        self._server = server
        self._which = which

    def _count(self, data: bytes) -> bytes:
        self._server.add(self._which, len(data))
        return data

    def write(self, data: bytes) -> int:
        self._server.add(self._which, len(data))
        return self._file.write(data)

    def readline(self, *args: object) -> bytes:
        return self._count(self._file.readline(*args))

    def read(self, *args: object) -> bytes:
        return self._count(self._file.read(*args))

    def __getattr__(self, name: str) -> object:
        return getattr(self._file, name)


class CountingServer(SiteServer):
    """The demo site, also counting the bytes it sends (status lines, headers, bodies) and receives (requests)."""

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)
        self._counts_lock = threading.Lock()
        self.bytes = {"sent": 0, "received": 0}
        server = self
        handler = self._httpd.RequestHandlerClass

        class Counting(handler):  # type: ignore[misc, valid-type]
            def setup(self) -> None:
                super().setup()
                self.rfile = _Counted(self.rfile, server, "received")
                self.wfile = _Counted(self.wfile, server, "sent")

        self._httpd.RequestHandlerClass = Counting

    def add(self, which: str, n: int) -> None:
        with self._counts_lock:
            self.bytes[which] += n

    def reset_log(self) -> None:
        super().reset_log()
        with self._counts_lock:
            self.bytes = {"sent": 0, "received": 0}

    def counted(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(self.bytes)


def _tree_hwm_kib(pid: int, peaks: dict[int, int]) -> None:
    """Record VmHWM (peak RSS since exec) of `pid` and its descendants into `peaks`."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks[pid] = max(peaks.get(pid, 0), int(line.split()[1]))
        children = " ".join(p.read_text() for p in Path(f"/proc/{pid}/task").glob("*/children"))
    except (OSError, ValueError):
        return
    for child in children.split():
        _tree_hwm_kib(int(child), peaks)


def run_child(argv: list[str], timeout: float, tree: Path = REPO) -> ChildRun:
    """Run a child to completion; wall time, and the peak RSS of the largest process in its tree.

    Not wait4's ru_maxrss: Linux carries the RSS a child had at fork (this process, holding the whole site) over
    exec, so at 2,000 pages both runs reported this benchmark's own ~220 MB. VmHWM is reset by exec; it is
    sampled every 20 ms (crawl child included), so a process living less than that may be missed. `tree` is the
    source tree the child runs (its working directory and PYTHONPATH).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=err, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)})
        killer = threading.Timer(timeout, child.kill)
        killer.start()
        peaks: dict[int, int] = {}
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                _tree_hwm_kib(child.pid, peaks)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            killer.cancel()
            done.set()
            sampler.join()
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        return ChildRun(
            child.returncode,
            seconds,
            max(peaks.values(), default=usage.ru_maxrss) / 1024,  # KiB on Linux
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )


def repwatch_command() -> list[str] | None:
    """How to run `repwatch` here: the installed script, else the Typer app by import, else None."""
    script = Path(sys.executable).with_name("repwatch")
    if script.exists():
        return [str(script)]
    if importlib.util.find_spec("monitor.cli") is not None:
        return [sys.executable, "-c", "import sys; from monitor.cli import app; sys.argv[0] = 'repwatch'; app()"]
    return None


def write_config(workdir: Path, url: str, pages: int, concurrency: int, model: bool = True) -> Path:
    config = {
        "database": f"sqlite:///{workdir / 'repwatch.db'}",
        "data_dir": str(workdir / "data"),
        "crawl": {"obey_robots": True, "max_pages": pages + 10, "polite": False, "concurrency": concurrency},
        "businesses": [{"name": "Bench Co", "sources": [{"name": "bench-site", "kind": "trustpilot", "url": url}]}],
    }
    if not model:
        config["sentiment"] = {"model": False}
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def stored_reviews(database: Path) -> dict[str, int] | None:
    """Rows in the review table (and how many are scored), or None if the schema is not what we expect."""
    try:
        with sqlite3.connect(database) as db:
            total, scored = db.execute("SELECT count(*), count(scored_at) FROM review").fetchone()
        return {"stored": total, "scored": scored}
    except sqlite3.Error:
        return None


def crawl_phase_seconds(database: Path) -> float | None:
    """Seconds from the latest CrawlRun's start to its end, as repwatch recorded them: the crawl child (start-up,
    fetch, parse, store) without the command's own start-up, scoring and sending."""
    from datetime import datetime

    try:
        with sqlite3.connect(database) as db:
            started, finished = db.execute(
                "SELECT started_at, finished_at FROM crawl_run ORDER BY id DESC LIMIT 1").fetchone()
        return round((datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds(), 3)
    except (sqlite3.Error, TypeError, ValueError):
        return None


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a child is killed")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--no-model", dest="model", action="store_false",
                        help="(b) with sentiment.model: false: stars and VADER only, no multilingual model")
    parser.add_argument("--complaint-share", type=float, default=REAL_COMPLAINT_SHARE,
                        help="share of 4-5★ texts written with complaint words (default: the real pages' 4 %%; "
                             "negative: the generator's old mix, ~50-70 %%)")  # fmt: skip
    args = parser.parse_args()

    share = args.complaint_share if args.complaint_share >= 0 else None
    site = build_site(args.pages, args.per_page, complaint_share=share)
    worded = complaint_worded_share(bench_reviews(args.pages * args.per_page, complaint_share=share))
    page_paths = set(site)
    average_kb = sum(map(len, site.values())) / len(site) / 1e3
    result: dict = {
        "site": {"pages": len(site), "per_page": args.per_page, "reviews": args.pages * args.per_page,
                 "avg_page_kb": round(average_kb, 1), "complaint_worded_4_5_star": round(worded, 4)},
        "concurrency": args.concurrency,
        "model": args.model,
        "cpus": os.cpu_count(),
    }
    print(f"site: {len(site)} pages × {args.per_page} reviews, {average_kb:.0f} KB a page; "
          f"{worded:.1%} of 4-5★ texts have complaint words (the model reads them)")

    with CountingServer(site, robots_txt=ROBOTS) as server:
        url = server.url_for(start_path())

        # (a) the baseline: parsing only
        bare = run_child([sys.executable, "-m", "bench.bare_spider", "--url", url,
                          "--concurrency", str(args.concurrency)], args.timeout)
        if bare.returncode != 0:
            print(f"(a) bare spider failed (exit {bare.returncode}): {last_line(bare.stderr)}")
            return 1
        reported = json.loads(last_line(bare.stdout))
        result["bare"] = {
            **reported,
            "wall_seconds": round(bare.seconds, 3),
            "peak_rss_mb": round(bare.peak_rss_mb, 1),
            "requests": server.count(),
            "bytes_sent": server.counted()["sent"],
            "pages_per_s": rate(reported["pages"], bare.seconds),
            "items_per_s": rate(reported["items"], bare.seconds),
        }

        # (b) repwatch crawl: the same pages, stored and scored; (c) the same again, nothing changed
        command = repwatch_command()
        if command is None:
            result["repwatch"] = {"skipped": "repwatch not runnable yet (no monitor.cli)"}
        else:
            with tempfile.TemporaryDirectory(prefix="repwatch-bench-") as tmp:
                workdir = Path(tmp)
                config = write_config(workdir, url, args.pages, args.concurrency, args.model)
                argv = [*command, "crawl", "--config", str(config), "--no-alerts"]
                server.reset_log()
                first = run_child(argv, args.timeout)
                first_log = server.requests
                first_bytes = server.counted()
                if first.returncode != 0:
                    result["repwatch"] = {"skipped": f"repwatch crawl exited {first.returncode}: {last_line(first.stderr)}"}
                else:
                    pages = len({r.path for r in first_log if r.path in page_paths and r.status == 200})
                    stored = stored_reviews(workdir / "repwatch.db")
                    items = stored["stored"] if stored else pages * args.per_page
                    crawl_seconds = crawl_phase_seconds(workdir / "repwatch.db")
                    result["repwatch"] = {
                        "pages": pages,
                        "items": items,
                        "db": stored,
                        "wall_seconds": round(first.seconds, 3),
                        "peak_rss_mb": round(first.peak_rss_mb, 1),
                        "requests": len(first_log),
                        "by_status": _by_status(first_log),
                        "bytes_sent": first_bytes["sent"],
                        "bytes_received": first_bytes["received"],
                        "pages_per_s": rate(pages, first.seconds),
                        "items_per_s": rate(items, first.seconds),
                        # the crawl child alone (fetch, parse, store), from the CrawlRun repwatch recorded
                        "crawl_phase_seconds": crawl_seconds,
                        "crawl_phase_pages_per_s": rate(pages, crawl_seconds) if crawl_seconds else None,
                    }
                    server.reset_log()
                    second = run_child(argv, args.timeout)
                    again = server.counted()
                    result["recrawl"] = {
                        "exit": second.returncode,
                        "wall_seconds": round(second.seconds, 3),
                        "requests": server.count(),
                        "by_status": _by_status(server.requests),
                        "bytes_sent": again["sent"],
                        "bytes_received": again["received"],
                        "paths": sorted({r.path for r in server.requests})[:10],
                        "stored_after": stored_reviews(workdir / "repwatch.db"),
                        # what the unchanged recrawl costs against the first crawl of the same site
                        "requests_vs_first": round(server.count() / len(first_log), 5) if first_log else None,
                        "bytes_vs_first": round(again["sent"] / first_bytes["sent"], 6) if first_bytes["sent"] else None,
                    }

    if "pages_per_s" in result.get("repwatch", {}) and result["bare"]["pages_per_s"]:
        result["ratio_b_over_a"] = round(result["repwatch"]["pages_per_s"] / result["bare"]["pages_per_s"], 3)
        if result["repwatch"].get("crawl_phase_pages_per_s"):
            # crawl child vs bare spider, both with their interpreter's start-up: scoring left out
            result["ratio_crawl_phase_over_a"] = round(
                result["repwatch"]["crawl_phase_pages_per_s"] / result["bare"]["pages_per_s"], 3)
        # An estimate of the steady state: the unchanged recrawl is ~all fixed cost (start-up, migrations, scorer),
        # and the bare spider reports its own crawl seconds without interpreter start-up.
        crawl_seconds = result["repwatch"]["wall_seconds"] - result["recrawl"]["wall_seconds"]
        if crawl_seconds > 0 and result["bare"]["seconds"] > 0:
            steady_b = result["repwatch"]["pages"] / crawl_seconds
            steady_a = result["bare"]["pages"] / result["bare"]["seconds"]
            result["steady_estimate"] = {"bare_pages_per_s": round(steady_a, 1), "repwatch_pages_per_s": round(steady_b, 1),
                                         "ratio_b_over_a": round(steady_b / steady_a, 3)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"written to {args.out}")
    return 0


def _by_status(requests: list) -> dict[str, int]:
    counts: dict[str, int] = {}
    for request in requests:
        counts[str(request.status)] = counts.get(str(request.status), 0) + 1
    return counts


def print_table(result: dict) -> None:
    rows = [("run", "pages", "items", "wall s", "pages/s", "items/s", "peak RSS MB", "requests", "bytes sent")]
    bare = result["bare"]
    rows.append(("(a) bare scrapy", bare["pages"], bare["items"], bare["wall_seconds"], bare["pages_per_s"],
                 bare["items_per_s"], bare["peak_rss_mb"], bare["requests"], bare["bytes_sent"]))
    repwatch = result.get("repwatch", {})
    if "skipped" in repwatch:
        print("\n".join("  ".join(f"{c!s:>12}" for c in row) for row in rows))
        print(f"(b)/(c) skipped: {repwatch['skipped']}")
        return
    rows.append(("(b) repwatch", repwatch["pages"], repwatch["items"], repwatch["wall_seconds"],
                 repwatch["pages_per_s"], repwatch["items_per_s"], repwatch["peak_rss_mb"], repwatch["requests"],
                 repwatch["bytes_sent"]))
    recrawl = result["recrawl"]
    rows.append(("(c) recrawl", "", "", recrawl["wall_seconds"], "", "", "", recrawl["requests"], recrawl["bytes_sent"]))
    print("\n".join("  ".join(f"{c!s:>15}" for c in row) for row in rows))
    print(f"ratio b/a (pages/s, wall): {result.get('ratio_b_over_a')}  (goal ≥ 0.8)   recrawl statuses: {recrawl['by_status']}")
    print(f"crawl phase of (b) (CrawlRun start to end: crawl child, store): {repwatch.get('crawl_phase_seconds')} s, "
          f"{repwatch.get('crawl_phase_pages_per_s')} pages/s, ratio to (a) {result.get('ratio_crawl_phase_over_a')}")
    print(f"recrawl vs first crawl: requests {recrawl['requests']}/{repwatch['requests']} "
          f"({recrawl['requests_vs_first']}), bytes sent {recrawl['bytes_sent']:,}/{repwatch['bytes_sent']:,} "
          f"({recrawl['bytes_vs_first']})")
    steady = result.get("steady_estimate")
    if steady:
        print(f"steady-state estimate (start-up excluded): bare {steady['bare_pages_per_s']} pages/s, "
              f"repwatch {steady['repwatch_pages_per_s']} pages/s, ratio {steady['ratio_b_over_a']}")


if __name__ == "__main__":
    sys.exit(main())
