"""Benchmark 3: one cycle over many sources on a local multi-host site, queued on Redis, run by 1 and by 2 workers."""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from uuid import uuid4

from bench.site import bench_reviews
from demo.server import SiteServer
from demo.sitegen import trustpilot_pages

REPO = Path(__file__).resolve().parents[1]
READY_WAIT = 120  # seconds for a worker to connect, never a pause


def machine() -> str:
    cpus = os.cpu_count()
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    memory = next((int(line.split()[1]) // 1024 // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    load = os.getloadavg()[0]
    return f"{cpus} cores ({model}), {memory} GB RAM, Python {platform.python_version()}, load {load:.1f} at start"


def start_sites(stack: ExitStack, sources: int, hosts: int) -> list[str]:
    """One demo site per loopback address (127.0.0.2, .3, ...): sources spread over `hosts` hosts, 20 reviews each."""
    servers = [stack.enter_context(SiteServer(robots_txt="User-agent: *\n", host=f"127.0.0.{k + 2}"))
               for k in range(hosts)]
    urls = []
    for i in range(sources):
        server = servers[i % hosts]
        domain = f"s{i:05d}.example"
        for path, body in trustpilot_pages(domain, bench_reviews(20, seed=i)).items():
            server.set_page(path, body)
        urls.append(f"{server.url}/review/{domain}")
    return urls


def write_config(folder: Path, urls: list[str], database: str, redis: str, queue: str, concurrency: int,
                 per_task: int, model: bool = True) -> Path:
    folder.mkdir(parents=True)
    sources = "".join(f"      - {{name: s{i:05d}, kind: trustpilot, url: \"{url}\"}}\n" for i, url in enumerate(urls))
    config = folder / "config.yaml"
    config.write_text(textwrap.dedent(f"""\
        data_dir: {folder / 'data'}
        database: "{database}"
        crawl: {{polite: false, download_delay: 0, timeout: 5m}}
        queue: {{url: "{redis}", name: {queue}, concurrency: {concurrency}, visibility_timeout: 1h,
                 sources_per_task: {per_task}}}
        sentiment: {{model: {'true' if model else 'false'}}}
        businesses:
          - name: Bench Co
            sources:
        """) + sources)
    return config


def run_cycle(urls: list[str], workers: int, concurrency: int, per_task: int, base_url: str, redis_url: str,
              tmp: Path, model: bool = True) -> dict:
    """Start `workers` workers, queue every source's crawl as `repwatch run` does (batches of `per_task`), and
    time until every source's result is back."""
    import queue as queues

    import redis as redis_client
    from sqlalchemy import create_engine, func, select, text

    from models.tables import CrawlRun, Review
    from monitor.config import load_config
    from models.vocab import batched
    from monitor.service.jobs import job_specs
    from monitor.service.queue import QueueLauncher

    schema = f"bench_{uuid4().hex[:10]}"
    admin = create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    database = f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"
    queue = f"bench-{uuid4().hex[:10]}"
    configs = [write_config(tmp / f"{queue}-{n}", urls, database, redis_url, queue, concurrency, per_task, model)
               for n in range(workers)]
    # The schema first, once: workers starting together would all run the migrations.
    subprocess.run([sys.executable, "-m", "monitor", "sources", "health", "--config", str(configs[0])], cwd=REPO,
                   check=True, capture_output=True)
    procs: list[subprocess.Popen] = []
    ready = threading.Semaphore(0)

    def follow(proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            if "ready:" in line:
                ready.release()

    try:
        for config in configs:
            proc = subprocess.Popen([sys.executable, "-m", "monitor", "worker", "--config", str(config)], cwd=REPO,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)
            procs.append(proc)
            threading.Thread(target=follow, args=(proc,), daemon=True).start()
        for _ in procs:
            if not ready.acquire(timeout=READY_WAIT):
                raise SystemExit("a worker did not become ready")
        config = load_config(configs[0])
        # What `repwatch run` does with a cycle's due crawls: the same batches, the same launcher, whose results
        # come back as each source's own exit (polled every 0.5 s here, as the daemon polls every second).
        launcher = QueueLauncher(config.queue, poll_interval=0.5)
        exits: queues.SimpleQueue = queues.SimpleQueue()
        crawls = [spec for spec in job_specs(config) if spec.kind == "crawl"]
        started = time.monotonic()
        tasks = batched(crawls, per_task)
        for batch in tasks:
            launcher.launch_batch(batch, configs[0], exits.put)
        queued = time.monotonic() - started
        codes: dict[int, int] = {}
        for _ in crawls:
            exited = exits.get()
            codes[exited.code] = codes.get(exited.code, 0) + 1
        wall = time.monotonic() - started
        engine = create_engine(database)
        with engine.connect() as db:
            ok_runs = db.scalar(select(func.count()).select_from(CrawlRun).where(CrawlRun.outcome == "ok"))
            reviews = db.scalar(select(func.count()).select_from(Review))
        engine.dispose()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        client = redis_client.Redis.from_url(redis_url)
        keys = list(client.scan_iter(f"{queue}:*"))
        if keys:
            client.delete(*keys)
    return {"workers": workers, "concurrency": concurrency, "sources_per_task": per_task, "model": model,
            "tasks": len(tasks),
            "sources": len(urls), "wall_s": round(wall, 1), "queue_s": round(queued, 2),
            "sources_per_s": round(len(urls) / wall, 2), "exit_codes": codes, "ok_runs": ok_runs, "reviews": reviews,
            "load_at_end": [round(n, 1) for n in os.getloadavg()]}


def per_task_default() -> int:
    from monitor.config import QueueSettings

    return QueueSettings.model_fields["sources_per_task"].default


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=20, help="loopback addresses the sources are spread over")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, comma-separated")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs at once per worker")
    parser.add_argument("--sources-per-task", type=int, default=per_task_default(),
                        help="sources crawled together by one job (queue.sources_per_task); 1: a job per source")
    parser.add_argument("--no-model", dest="model", action="store_false",
                        help="sentiment.model: false (stars and VADER only): the queue and crawl cost without the "
                        "multilingual model's scoring")
    parser.add_argument("--database", default=os.environ.get(
        "REPWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis", default=os.environ.get("REPWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "workers.json")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    result = {"machine": machine(), "runs": []}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="repwatch-bench-workers-") as tmp:
        urls = start_sites(stack, args.sources, args.hosts)
        for workers in counts:
            run = run_cycle(urls, workers, args.concurrency, args.sources_per_task, args.database, args.redis,
                            Path(tmp), args.model)
            result["runs"].append(run)
            print(json.dumps(run), flush=True)
    first = result["runs"][0]["wall_s"]
    for run in result["runs"]:
        run["speed_up"] = round(first / run["wall_s"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"machine: {result['machine']}")
    print("| workers × jobs each | sources per task | tasks | sources | wall s | sources/s | speed-up | ok runs | reviews |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in result["runs"]:
        print(f"| {run['workers']} × {run['concurrency']} | {run['sources_per_task']} | {run['tasks']} "
              f"| {run['sources']} | {run['wall_s']} | {run['sources_per_s']} | {run['speed_up']} | {run['ok_runs']} "
              f"| {run['reviews']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
