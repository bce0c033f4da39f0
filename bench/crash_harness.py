"""SIGKILL crash harness: kill `repwatch crawl` at fetch, store, score and deliver, then check that nothing was lost."""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from demo.server import SiteServer
from demo.sitegen import SiteReview, trustpilot_pages
from demo.slack_receiver import SlackReceiver

REPO = Path(__file__).resolve().parents[1]
POINTS = ("fetch", "store", "score", "deliver")
VARIANTS = {
    "fetch": ("robots", "page1", "page2", "page3"),
    "store": ("page7",),
    "score": ("before", "after"),
    "deliver": ("unseen", "answered"),
}
DOMAIN = "crash.example"
TOKEN = "xoxb-crash-harness-token"
WAIT = 60.0  # seconds: the most any observed condition may take; a bound for polling, never a pause
POLL = 0.003
HISTORY = 40  # old reviews on the site before the first run (a silent baseline: no alerts)
FOOTER = re.compile(r"review #(\d+)")


# --- the local servers, with holds ------------------------------------------------------------------------------


@dataclass
class Gate:
    arrived: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)


class HoldingSite(SiteServer):
    """The demo site, except that a held path answers only once its gate is opened."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.gates: dict[str, Gate] = {}

    def hold(self, path: str) -> Gate:
        gate = self.gates[path] = Gate()
        return gate

    def release_all(self) -> None:
        for gate in self.gates.values():
            gate.opened.set()
        self.gates = {}

    def _lookup(self, path: str):  # runs in the request's thread, before the answer
        gate = self.gates.get(path)
        if gate is not None:
            gate.arrived.set()
            gate.opened.wait(WAIT)
        return super()._lookup(path)


@dataclass
class SlackHold(Gate):
    after_record: bool = False


class HoldingSlack(SlackReceiver):
    """The Slack stand-in, holding the n-th chat.postMessage before or after it records the message.

    Held before recording, the request then fails (the client is gone): Slack never had it. Held after, Slack has
    the message and the client never hears so (the duplicate window). stall_next holds the same way but only the
    very next request, and records nothing.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._posts = 0
        self._holds: dict[int, SlackHold] = {}
        self._hold_lock = threading.Lock()

    def hold_post(self, nth: int, *, after_record: bool) -> SlackHold:
        """Hold the nth chat.postMessage from now (1: the next one)."""
        with self._hold_lock:
            hold = self._holds[self._posts + nth] = SlackHold(after_record=after_record)
        return hold

    def release_all(self) -> None:
        with self._hold_lock:
            holds, self._holds = list(self._holds.values()), {}
        for hold in holds:
            hold.opened.set()

    def close(self) -> None:
        self.release_all()
        super().close()

    def _api(self, method: str, headers: Any, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method != "chat.postMessage":
            return super()._api(method, headers, params)
        with self._hold_lock:
            self._posts += 1
            hold = self._holds.pop(self._posts, None)
        if hold is not None and not hold.after_record:
            hold.arrived.set()
            hold.opened.wait(WAIT)
            return 500, {"ok": False, "error": "internal_error"}
        answer = super()._api(method, headers, params)
        if hold is not None:
            hold.arrived.set()
            hold.opened.wait(WAIT)
        return answer


# --- bookkeeping --------------------------------------------------------------------------------------------------


@dataclass
class PointTally:
    kills: int = 0
    missed: int = 0  # the command finished before the point was reached: not a kill
    variants: Counter = field(default_factory=Counter)
    orphans: int = 0  # crawl children alive after their command was killed
    in_flight: int = 0  # Slack had the message, our commit did not (counted at the kill)
    in_flight_notices: int = 0  # of those, not alerts (a flood summary): sent again too, but not about one review
    lost_reviews: int = 0
    lost_alerts: int = 0
    duplicates_in_window: int = 0  # a second copy of a message that was in flight at a kill
    duplicates_unexplained: int = 0
    stuck: int = 0
    seconds: float = 0.0


@dataclass
class Report:
    seed: int
    kills: int = 0
    streaks: int = 0
    points: dict[str, PointTally] = field(default_factory=lambda: {p: PointTally() for p in POINTS})
    reviews_on_site: int = 0
    alert_worthy: int = 0
    lost_reviews: int = 0
    lost_alerts: int = 0
    duplicates_in_window: int = 0
    duplicates_unexplained: int = 0
    stuck: dict[str, int] = field(default_factory=Counter)
    orphans: int = 0
    recovery_failures: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line per violation, for the reader
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing stuck, no orphan, and duplicates only from the answered-not-committed window."""
        return not (self.lost_reviews or self.lost_alerts or self.duplicates_unexplained or sum(self.stuck.values())
                    or self.orphans or self.recovery_failures)

    def as_dict(self) -> dict[str, Any]:
        data = {name: value for name, value in vars(self).items() if name not in ("points", "stuck")}
        data["points"] = {name: {**vars(tally), "variants": dict(tally.variants)} for name, tally in self.points.items()}
        data["stuck"] = dict(self.stuck)
        data["ok"] = self.ok
        return data

    def table(self) -> str:
        columns = ("kills", "missed", "orphans", "in_flight", "in_flight_notices", "lost_reviews", "lost_alerts",
                   "duplicates_in_window", "duplicates_unexplained", "stuck", "seconds")
        heads = ("point", "kills", "missed", "orphans", "in flight", "(notices)", "lost rev", "lost alerts",
                 "dup (window)", "dup (other)", "stuck", "wall s")
        rows = [heads]
        for name, tally in self.points.items():
            rows.append((name, *(f"{getattr(tally, c):.1f}" if c == "seconds" else str(getattr(tally, c))
                                 for c in columns)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(heads))]
        lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.append("")
        for name, tally in self.points.items():
            lines.append(f"{name} variants: " + ", ".join(f"{v} {n}" for v, n in sorted(tally.variants.items())))
        lines += [
            "",
            f"kills {self.kills} in {self.streaks} streaks; {self.reviews_on_site} reviews on the site, "
            f"{self.alert_worthy} alert-worthy",
            f"lost reviews {self.lost_reviews}, lost alerts {self.lost_alerts}; duplicate alerts "
            f"{self.duplicates_in_window} in the answered-not-committed window + {self.duplicates_unexplained} "
            f"unexplained; {sum(p.in_flight_notices for p in self.points.values())} flood summaries sent again "
            "from the same window",
            f"stuck rows {dict(self.stuck) or 0}, orphaned crawl children {self.orphans}, "
            f"failed recovery runs {len(self.recovery_failures)}",
            f"wall time {self.wall_seconds:.1f} s; verdict: {'OK' if self.ok else 'PROBLEMS'}",
        ]
        lines += [f"  - {p}" for p in self.problems[:40]]
        return "\n".join(lines)


@dataclass
class Kill:
    point: str
    variant: str
    observed: str = ""  # what the database said at the kill


# --- the harness ------------------------------------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen | None = None, timeout: float = WAIT) -> bool:
    """Poll `condition` until true (True), the process ends first (False) or the deadline passes (TimeoutError)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if proc is not None and proc.poll() is not None:
            return condition()
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached within the deadline")
        time.sleep(POLL)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def _dies(pid: int, timeout: float = 5.0) -> bool:
    try:
        return wait_until(lambda: not alive(pid), timeout=timeout)
    except TimeoutError:
        return False


def waiting_for_flock(pid: int, inode: int) -> bool:
    """Does /proc/locks show `pid` blocked on an flock of this inode?"""
    with open("/proc/locks", encoding="ascii") as locks:
        for line in locks:
            parts = line.split()
            if len(parts) > 5 and parts[1] == "->" and parts[2] == "FLOCK" and parts[5] == str(pid) \
                    and parts[6].rsplit(":", 1)[-1] == str(inode):
                return True
    return False


class Harness:
    """Runs `repwatch crawl` against a local site and Slack stand-in, killing it with SIGKILL at chosen points.

    `.venv/bin/python -m bench.crash_harness --kills 200 --seed 1`. Each kill point is reached by observing it,
    never by waiting a while:

    - fetch:   the local site holds a page (robots.txt, page 1, 2 or 3) until the command is killed;
    - store:   the site holds page 7 and the harness sees the first batch of reviews committed (pages 1-5), then kills;
    - score:   `before`: the harness holds the outbox lock and kills once /proc/locks shows the command waiting for it
               (the crawl is recorded, nothing scored); `after`: once every review is scored, the harness takes the
               SQLite write lock (no further commit can happen) and kills (the first Slack send is held meanwhile,
               so the command cannot finish first);
    - deliver: the Slack stand-in holds the n-th chat.postMessage, either before it records the message (`unseen`) or
               after (`answered`: Slack has the alert, our commit never came; the one window where a duplicate is
               unavoidable).

    Kills come in streaks of 1-3 (seeded); after each streak the command runs to completion and the harness checks:
    every review on the site is in the database once, every alert-worthy review has a `sent` delivery and reached
    Slack, no alert reached Slack twice unless the earlier copy was in flight at a kill (Slack had it, our commit did
    not), nothing is stuck (no CrawlRun "running", no due pending delivery, no unscored review), and no crawl child
    outlived the command it belonged to. Linux only (/proc).
    """

    def __init__(self, workdir: Path, seed: int, *, max_streak: int = 3, echo: Callable[[str], None] | None = None):
        self.workdir = workdir
        self.rng = random.Random(seed)
        self.report = Report(seed=seed)
        self.max_streak = max_streak
        self.echo = echo or (lambda line: None)
        self.data = workdir / "data"
        self.db_path = self.data / "repwatch.db"
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.site = HoldingSite(robots_txt="User-agent: *\nDisallow: /private/\n")
        self.slack = HoldingSlack(token=TOKEN)
        self.reviews: list[SiteReview] = []
        self.negatives: set[str] = set()  # external ids of the reviews that must alert
        self.base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=60)
        self.counter = 0
        self.runs = 0
        # per review id: how many of its alert messages were in flight at a kill (each allows one more copy)
        self.in_flight_alerts: Counter = Counter()
        self.window_owner: dict[int, list[str]] = {}  # review id -> the kill points that had its alert in flight
        self._seen_unclaimed: set[str] = set()
        self.stuck_ids: dict[str, set[int]] = {}
        self.in_flight_messages = 0
        self.missing_reviews: set[str] = set()
        self.missing_alerts: set[str] = set()
        self.counted_duplicates: Counter = Counter()
        self.db: sqlite3.Connection | None = None

    # -- setup ----------------------------------------------------------------------------------------------------

    def __enter__(self) -> Harness:
        self.site.start()
        self.slack.start()
        # Held requests are answered to killed clients: a broken pipe there is expected, not worth a traceback.
        self.slack._server.handle_error = lambda request, client_address: None  # type: ignore[union-attr]
        self.config = self.workdir / "config.yaml"
        self.config.write_text(textwrap.dedent(f"""
            data_dir: {self.data}
            crawl:
              polite: false
              download_delay: 0
              max_pages: 10000
            alerting:
              reply_deadline: null
              spike: null
            notifiers:
              slack:
                kind: slack
                token: ${{SLACK_BOT_TOKEN}}
                channel: "#reviews"
                api_url: {self.slack.api_url}
                min_interval: 0
                timeout: 30
            businesses:
              - name: Crash Coffee
                notify: [slack]
                sources:
                  - name: crash-trustpilot
                    kind: trustpilot
                    url: {self.site.url}/review/{DOMAIN}
        """))
        for n in range(HISTORY):  # months old: history, silent in the first crawl
            self.reviews.append(self._review(1 + n % 5, self.base - timedelta(days=100 + n)))
        self._publish()
        return self

    def __exit__(self, *exc: object) -> None:
        self.site.release_all()
        self.slack.release_all()
        if self.db is not None:
            self.db.close()
        self.slack.close()
        self.site.stop()

    def _review(self, rating: int, published: datetime | None = None) -> SiteReview:
        self.counter += 1
        n = self.counter
        if published is None:
            published = self.base + timedelta(seconds=n)  # newer than every earlier one: new reviews come on top
        body = ("Awful. Cold food, rude staff, dirty tables and they charged me twice. Never again, terrible."
                if rating == 1 else "Lovely place, great coffee and friendly staff. Highly recommended!")
        return SiteReview(id=f"{n:024x}", author=f"Reviewer {n}", rating=rating, title=f"Visit {n}", body=body,
                          published_at=published, language="en")

    def _add(self, count: int, negatives: int) -> None:
        bad = set(self.rng.sample(range(count), min(negatives, count)))
        for i in range(count):
            review = self._review(1 if i in bad else 5)
            if i in bad:
                self.negatives.add(review.id)
            self.reviews.append(review)
        self._publish()

    def _publish(self) -> None:
        pages = trustpilot_pages(DOMAIN, self.reviews)
        for path, body in pages.items():
            self.site.set_page(path, body)

    # -- the database, read as an observer -------------------------------------------------------------------------

    def q(self, sql: str, *args: Any) -> Any:
        if not self.db_path.exists():
            return None
        if self.db is None:
            self.db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        try:
            row = self.db.execute(sql, args).fetchone()
        except sqlite3.OperationalError:  # no tables yet: the first command is still migrating
            return None
        return row[0] if row else None

    def rows(self, sql: str, *args: Any) -> list[tuple]:
        if self.db is None:
            self.q("SELECT 1")
        assert self.db is not None
        return self.db.execute(sql, args).fetchall()

    def count(self, sql: str, *args: Any) -> int:
        return int(self.q(sql, *args) or 0)

    # -- one run of the command -----------------------------------------------------------------------------------

    def _start(self) -> tuple[subprocess.Popen, Path]:
        self.runs += 1
        log = self.logs / f"run-{self.runs:04d}.log"
        env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN, "COLUMNS": "200", "PYTHONPATH": str(REPO)}
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "crawl", "--config", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                start_new_session=True,  # its own process group, killed as one
            )
        return proc, log

    def run_to_completion(self) -> None:
        proc, log = self._start()
        try:
            code = proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            code = -9
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if code != 0:
            tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
            self.report.recovery_failures.append(f"run {self.runs} exited {code}: {tail}")
            self.report.problems.append(f"recovery run {self.runs} exited {code} ({log})")

    def kill_once(self, point: str, variant: str) -> Kill | None:
        """One run killed at `point`; None when the command finished before reaching it."""
        kill = Kill(point, variant)
        reviews_before = self.count("SELECT count(*) FROM review")
        run_before = self.count("SELECT max(id) FROM crawl_run")
        # Enough new reviews for the point to be reached, with 1-3 (at least one) that must alert. Page 7 is
        # fetched by an incremental crawl only when six pages are new; after a failed or killed run every page is.
        if point == "store":
            full = (self.q("SELECT outcome FROM crawl_run ORDER BY id DESC LIMIT 1") == "running"
                    or self.q("SELECT state FROM source") != "ok")
            few = full and len(self.reviews) >= 7 * 20
            self._add(self.rng.randint(1, 30) if few else self.rng.randint(140, 170), self.rng.randint(1, 3))
        elif point == "fetch":
            self._add(self.rng.randint(41, 60) if variant == "page3" else self.rng.randint(1, 40),
                      self.rng.randint(1, 3))
        else:
            self._add(self.rng.randint(1, 30), self.rng.randint(1, 3))
        freeze: sqlite3.Connection | None = None
        outbox = None
        gate: Gate | None = None
        if point == "fetch":
            path = {"robots": "/robots.txt", "page1": f"/review/{DOMAIN}", "page2": f"/review/{DOMAIN}?page=2",
                    "page3": f"/review/{DOMAIN}?page=3"}[variant]
            gate = self.site.hold(path)
        elif point == "store":
            gate = self.site.hold(f"/review/{DOMAIN}?page=7")
        elif point == "score" and variant == "before":
            from monitor.service.locks import OUTBOX_LOCK, acquire, lock_path

            outbox = acquire(self.data, OUTBOX_LOCK)
            inode = os.stat(lock_path(self.data, OUTBOX_LOCK)).st_ino
        elif point == "score":
            # A backstop, so the command cannot finish before the harness has seen every review scored: the first
            # send waits (unrecorded) until the kill.
            self.slack.hold_post(1, after_record=False)
        elif point == "deliver":
            pending = self.count("SELECT count(*) FROM delivery WHERE status = 'pending'")
            gate = self.slack.hold_post(self.rng.randint(1, max(1, min(pending + 1, 4))),
                                        after_record=variant == "answered")

        proc, log = self._start()
        started = time.monotonic()
        try:
            def current_run() -> int:
                return self.count("SELECT count(*) FROM crawl_run WHERE id > ?", run_before)

            if point in ("fetch", "deliver"):
                assert gate is not None
                reached = wait_until(gate.arrived.is_set, proc)
            elif point == "store":
                assert gate is not None

                def stored() -> bool:  # a batch of this run committed (new reviews, or known ones seen again)
                    started = self.q("SELECT min(started_at) FROM crawl_run WHERE id > ?", run_before)
                    return gate.arrived.is_set() and started is not None and self.count(
                        "SELECT count(*) FROM review WHERE last_seen_at >= ?", started) > 0

                reached = wait_until(stored, proc)
            elif variant == "before":
                reached = wait_until(lambda: waiting_for_flock(proc.pid, inode), proc)
            else:
                def all_scored() -> bool:
                    return (current_run() > 0
                            and self.count("SELECT count(*) FROM review") > reviews_before
                            and self.count("SELECT count(*) FROM review WHERE scored_at IS NULL") == 0
                            and self.count("SELECT count(*) FROM crawl_run WHERE id > ? AND outcome = 'running'",
                                           run_before) == 0)
                reached = wait_until(all_scored, proc)
                if reached:
                    freeze = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
                    freeze.execute("BEGIN IMMEDIATE")  # from here the command cannot commit anything
            if not reached:
                self.report.points[point].missed += 1
                self.echo(f"  {point}/{variant}: the run finished first (exit {proc.returncode}, {log.name})")
                return None
            children = children_of(proc.pid)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            # A crawl child must not outlive its command (it would crawl on without the source's lock). The
            # holds stay on meanwhile, so a surviving child is still there to be seen, not done and gone.
            orphans = [child for child in children if not _dies(child)]
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            self.site.release_all()
            self.slack.release_all()
            if freeze is not None:
                freeze.execute("ROLLBACK")
                freeze.close()
            if outbox is not None:
                outbox.release()
        tally = self.report.points[point]
        tally.kills += 1
        tally.variants[variant] += 1
        tally.seconds += time.monotonic() - started
        for child in orphans:
            tally.orphans += 1
            self.report.orphans += 1
            self.report.problems.append(f"{point}/{variant}: crawl child {child} outlived its command (killed now)")
            os.kill(child, signal.SIGKILL)
            wait_until(lambda: not alive(child), timeout=WAIT)
        self._after_kill(kill, run_before)
        return kill

    def _after_kill(self, kill: Kill, run_before: int) -> None:
        tally = self.report.points[kill.point]
        # Earlier runs must have been closed by this one, which started after them.
        stale = self._new_stuck("crawl_run running after the next run",
                                "SELECT id FROM crawl_run WHERE id <= ? AND outcome = 'running'", run_before)
        if stale:
            tally.stuck += stale
            self.report.problems.append(f"{kill.point}/{kill.variant}: {stale} earlier crawl runs still 'running'")
        # What Slack has that no sent delivery points at: in flight at this kill.
        sent = {remote for (remote,) in self.rows("SELECT remote_id FROM delivery WHERE status = 'sent'")}
        for message in self._unclaimed(sent):
            self.in_flight_messages += 1
            tally.in_flight += 1
            if (review := self._alert_review(message)) is not None:
                self.in_flight_alerts[review] += 1
                self.window_owner.setdefault(review, []).append(kill.point)
            else:
                tally.in_flight_notices += 1
        kill.observed = (f"reviews {self.count('SELECT count(*) FROM review')}, "
                         f"unscored {self.count('SELECT count(*) FROM review WHERE scored_at IS NULL')}, "
                         f"pending {self.count('SELECT count(*) FROM delivery WHERE status = ?', 'pending')}")

    def _unclaimed(self, sent: set[str]) -> list[dict[str, Any]]:
        """Slack messages no sent delivery claims, not seen before (marked seen now)."""
        found = []
        for message in self.slack.messages:
            if message["kind"] != "post":
                continue
            key = f"{message['channel']}/{message['ts']}"
            if key not in sent and key not in self._seen_unclaimed:
                self._seen_unclaimed.add(key)
                found.append(message)
        return found

    @staticmethod
    def _alert_review(message: dict[str, Any]) -> int | None:
        match = FOOTER.search(json.dumps(message.get("blocks") or []))
        return int(match.group(1)) if match else None

    # -- checks after a recovery run --------------------------------------------------------------------------------

    def check(self, streak: list[Kill]) -> None:
        points = {k.point for k in streak}
        where = "+".join(f"{k.point}/{k.variant}" for k in streak) or "final"

        def charge(attr: str, n: int) -> None:
            for p in points:
                setattr(self.report.points[p], attr, getattr(self.report.points[p], attr) + n)

        ids = {ext: rid for rid, ext in self.rows("SELECT id, external_id FROM review")}
        on_site = {r.id for r in self.reviews}
        missing = on_site - set(ids)
        new_missing = missing - self.missing_reviews
        if new_missing:
            charge("lost_reviews", len(new_missing))
            self.report.problems.append(f"after {where}: {len(new_missing)} reviews on the site not in the database")
        self.missing_reviews = missing
        doubled = self.count("SELECT count(*) - count(DISTINCT source_id || ':' || external_id) FROM review")
        if doubled:
            self.report.problems.append(f"after {where}: {doubled} reviews stored twice")
            charge("lost_reviews", doubled)

        sent_alerts = {rid for (rid,) in self.rows(
            "SELECT review_id FROM delivery WHERE kind = 'alert' AND status = 'sent'")}
        copies = Counter(r for m in self.slack.messages if m["kind"] == "post"
                         and (r := self._alert_review(m)) is not None)
        lost = {ext for ext in self.negatives if ext in ids and (ids[ext] not in sent_alerts or not copies[ids[ext]])}
        lost |= {ext for ext in self.negatives if ext not in ids}
        new_lost = lost - self.missing_alerts
        if new_lost:
            charge("lost_alerts", len(new_lost))
            self.report.problems.append(f"after {where}: {len(new_lost)} alerts never delivered")
        self.missing_alerts = lost

        for review_id, n in copies.items():
            extra = n - 1 - self.counted_duplicates[review_id]
            if extra <= 0:
                continue
            allowed = self.in_flight_alerts[review_id] - self.counted_duplicates[review_id]
            window = max(0, min(extra, allowed))
            owners = self.window_owner.get(review_id, [])
            for i in range(window):  # the copy belongs to the kill that had the first one in flight
                self.report.points[owners[self.counted_duplicates[review_id] + i]].duplicates_in_window += 1
            self.counted_duplicates[review_id] += extra
            self.report.duplicates_in_window += window
            if extra > window:
                self.report.duplicates_unexplained += extra - window
                charge("duplicates_unexplained", extra - window)
                self.report.problems.append(f"after {where}: review #{review_id} alerted {n} times, "
                                            f"{extra - window} copies not explained by a kill")

        # Every message Slack has is claimed by a sent delivery, or was in flight at a kill (a copy was sent later)
        sent = {remote for (remote,) in self.rows("SELECT remote_id FROM delivery WHERE status = 'sent'")}
        # (alerts are counted by review above; this catches the rest: flood summaries and other notices)
        if stray := [m for m in self._unclaimed(sent) if self._alert_review(m) is None]:
            self.report.duplicates_unexplained += len(stray)
            charge("duplicates_unexplained", len(stray))
            self.report.problems.append(f"after {where}: {len(stray)} Slack notices no sent delivery accounts for")

        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # how SQLAlchemy writes UTC times in SQLite
        stuck = {
            "crawl_run running": ("SELECT id FROM crawl_run WHERE outcome = 'running'", ()),
            "delivery pending and due": ("SELECT id FROM delivery WHERE status = 'pending' AND next_attempt_at <= ?",
                                         (now,)),
            "delivery failed": ("SELECT id FROM delivery WHERE status = 'failed'", ()),
            "review unscored": ("SELECT id FROM review WHERE scored_at IS NULL", ()),
        }
        for what, (sql, args) in stuck.items():
            if n := self._new_stuck(what, sql, *args):
                charge("stuck", n)
                self.report.problems.append(f"after {where}: {n} {what}")

    def _new_stuck(self, what: str, sql: str, *args: Any) -> int:
        """Rows the query finds that were not counted as stuck before (a row stuck for long counts once)."""
        fresh = {row_id for (row_id,) in self.rows(sql, *args)} - self.stuck_ids.setdefault(what, set())
        self.stuck_ids[what] |= fresh
        if fresh:
            self.report.stuck[what] += len(fresh)
        return len(fresh)

    # -- the whole run -------------------------------------------------------------------------------------------

    def plan(self, kills: int) -> list[list[tuple[str, str]]]:
        """Streaks of kills: points in shuffled rounds (each point equally often), variants in turn per point."""
        order: list[str] = []
        while len(order) < kills:
            round_ = list(POINTS)
            self.rng.shuffle(round_)
            order += round_
        order = order[:kills]
        turn = {p: self.rng.randrange(len(VARIANTS[p])) for p in POINTS}
        chosen = []
        for point in order:
            chosen.append((point, VARIANTS[point][turn[point] % len(VARIANTS[point])]))
            turn[point] += 1
        streaks = []
        while chosen:
            n = self.rng.randint(1, self.max_streak)
            streaks.append(chosen[:n])
            chosen = chosen[n:]
        return streaks

    def run(self, kills: int) -> Report:
        started = time.monotonic()
        for number, streak_plan in enumerate(self.plan(kills), 1):
            streak: list[Kill] = []
            for point, variant in streak_plan:
                kill = None
                for _attempt in range(3):  # a missed point is tried again with more reviews
                    kill = self.kill_once(point, variant)
                    if kill is not None:
                        break
                if kill is None:
                    continue
                streak.append(kill)
                self.report.kills += 1
                self.echo(f"kill {self.report.kills}: {point}/{variant} ({kill.observed})")
            # After the streak, a run to completion with a few more reviews, then the checks.
            self._add(self.rng.randint(0, 5), self.rng.randint(0, 1))
            self.run_to_completion()
            self.report.streaks += 1
            self.check(streak)
            self.echo(f"streak {number} checked: {len(self.report.problems)} problems so far")
        self.report.reviews_on_site = len(self.reviews)
        self.report.alert_worthy = len(self.negatives)
        self.report.lost_reviews = len(self.missing_reviews)
        self.report.lost_alerts = len(self.missing_alerts)
        self.report.wall_seconds = time.monotonic() - started
        return self.report


def run_harness(kills: int, seed: int, workdir: Path | None = None, *, max_streak: int = 3,
                echo: Callable[[str], None] | None = None) -> Report:
    if not sys.platform.startswith("linux"):
        raise SystemExit("the crash harness reads /proc: Linux only")
    with tempfile.TemporaryDirectory(prefix="repwatch-crash-") as tmp:
        where = Path(workdir) if workdir else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        with Harness(where, seed, max_streak=max_streak, echo=echo) as harness:
            return harness.run(kills)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crash_harness", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-streak", type=int, default=3, help="kills in a row before a run to completion")
    parser.add_argument("--workdir", type=Path, help="keep the data and logs here (default: a temporary directory)")
    parser.add_argument("--json", type=Path, help="also write the counts here")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per kill")
    args = parser.parse_args(argv)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # so the command being run is killed on the way out, not left behind

    signal.signal(signal.SIGTERM, stop)
    report = run_harness(args.kills, args.seed, args.workdir, max_streak=args.max_streak,
                         echo=(lambda line: print(line, flush=True)) if args.verbose else None)
    print(report.table())
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=2, default=str))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
