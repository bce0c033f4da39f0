"""The `repwatch` command: every verb an operator (or the scheduler) runs."""
from __future__ import annotations

import csv
import inspect
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor.config import DEFAULT_CONFIG_NAME, ConfigError, load_config, parse_duration
from monitor.lock import EXIT_LOCKED
from models.textsafe import terminal_safe

app = typer.Typer(
    help="repwatch: watch review sites, score what people say, alert on negative reviews.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check and show config.yaml.", no_args_is_help=True)
sources_app = typer.Typer(help="Source kinds and the health of configured sources.", no_args_is_help=True)
alerts_app = typer.Typer(help="Try the alert destinations.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(sources_app, name="sources")
app.add_typer(alerts_app, name="alerts")

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # one problem = one line, never wrapped

EXIT_FAILURE = 1
EXIT_BLOCKED = 3
# EXIT_LOCKED (75, EX_TEMPFAIL) comes from monitor.lock: every source asked for was being crawled by another process

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="REPWATCH_CONFIG", help="config file", show_default=True),
]


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    err.print(Text(f"repwatch: {message}"))
    raise typer.Exit(code)


def open_config(path: Path) -> Any:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(Text(problem if problem.startswith(str(path)) else f"{path}: {problem}"))
        raise typer.Exit(EXIT_FAILURE) from None


def open_database(config: Any):
    from models.db import connect, migrate, session_factory

    engine = connect(config.database_url())
    migrate(engine)
    return session_factory(engine)


# --- init / config ----------------------------------------------------------------------------------


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="where to write it")] = Path(DEFAULT_CONFIG_NAME),
    force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False,
) -> None:
    """Write a commented config.yaml to start from."""
    if path.exists() and not force:
        fail(f"{path} exists; use --force to overwrite it")
    template = Path(__file__).parent / "templates" / "config.yaml"
    path.write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
    out.print(f"wrote {path}: edit the businesses and sources, set SLACK_BOT_TOKEN, then `repwatch config check`")


@config_app.command("check")
def config_check(config: ConfigOption = Path(DEFAULT_CONFIG_NAME)) -> None:
    """Validate the config: exit 1 with one line per problem."""
    loaded = open_config(config)
    sources = loaded.sources()
    out.print(
        f"{config}: OK ({len(loaded.businesses)} businesses, {len(sources)} sources, {len(loaded.notifiers)} notifiers)"
    )


@config_app.command("show")
def config_show(config: ConfigOption = Path(DEFAULT_CONFIG_NAME)) -> None:
    """Print the effective config with defaults filled in and secrets redacted."""
    import yaml

    from monitor.config import redacted

    out.print(Text(yaml.safe_dump(redacted(open_config(config)), sort_keys=False, allow_unicode=True)))


# --- crawl ------------------------------------------------------------------------------------------


@app.command()
def crawl(
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="only this source (repeatable)")] = None,
    no_alerts: Annotated[bool, typer.Option("--no-alerts", help="queue alerts but do not send them now")] = False,
    full: Annotated[bool, typer.Option("--full", help="page through every source to its end (no stop at known reviews) and record reviews removed from the site")] = False,
) -> None:
    """Crawl the sources, store new reviews, score them and send alerts. Exit 1 if anything failed.

    A source another crawl is busy with is skipped with one line; exit 75 if every source was skipped.
    """
    from alerts.outbox import deliver_due
    from monitor.crawl import run_crawl
    from monitor.lock import OUTBOX_LOCK, DatabaseLocks, LockHeld, acquire
    from monitor.followups import queue_followups
    from monitor.scoring import score_pending, warm_scores
    from monitor.sentiment import Scorer

    loaded = open_config(config)
    if source:
        for name in source:
            try:
                loaded.source(name)
            except ConfigError as exc:
                fail(exc.problems[0])
    wanted = list(dict.fromkeys(source or [s.name for _, s in loaded.sources()]))
    locks: dict[str, Any] = {}  # held until this process ends (the OS frees them even after SIGKILL): scoring and sending included
    # On PostgreSQL the same locks for every machine (`repwatch worker`s elsewhere), held as long as the flocks.
    shared = DatabaseLocks(loaded.database_url())
    for name in wanted:
        try:
            locks[name] = acquire(loaded.data_dir, name)
            shared.acquire(name)
        except LockHeld as exc:
            if name in locks:
                locks.pop(name).release()
            err.print(Text(f"repwatch: source {name}: skipped, another crawl ({exc.holder.describe()}) holds its lock"))
    if wanted and not locks:
        raise typer.Exit(EXIT_LOCKED)
    sessions = open_database(loaded)
    with err.status(f"crawling {len(locks)} sources…"):
        result = run_crawl(loaded, sessions, list(locks), full=full)
    scorer = Scorer.from_config(loaded)
    with err.status("reading new reviews…"):
        # The model's part of scoring, before the lock below: crawls on other cores and machines read theirs at
        # the same time (bench/RESULTS.md section 3). After the crawl, not during it: measured here, scoring
        # alongside the crawl child slowed the crawl by more than the scoring it hid (two cores, one SQLite writer).
        warm_scores(sessions, scorer, list(locks))
    # One process at a time scores and sends, or two crawls finishing together could send an alert twice.
    outbox_lock = acquire(loaded.data_dir, OUTBOX_LOCK, wait=True)
    shared.acquire(OUTBOX_LOCK, wait=True)  # and one machine at a time
    with err.status("scoring new reviews…"):
        # This crawl's sources only: another crawl's new reviews are being read by that crawl right now (a
        # source's leftovers from a killed crawl wait for its next crawl, or for `repwatch deliver`).
        scored, queued = score_pending(sessions, loaded, scorer, source_names=list(locks))
        followups = queue_followups(sessions, loaded)
    delivery = None
    if not no_alerts:
        with err.status("sending alerts…"):
            delivery = deliver_due(sessions, loaded)
    shared.release(OUTBOX_LOCK)
    outbox_lock.release()

    table = Table(title="crawl", title_justify="left")
    for column in ("source", "outcome", "requests", "pages", "reviews", "new", "changed", "removed"):
        table.add_column(column, justify="right" if column not in ("source", "outcome") else "left")
    for s in result.sources:
        style = "green" if s.outcome == "ok" else "red"
        table.add_row(s.name, Text(s.outcome, style=style), *(str(v) for v in (s.requests, s.pages, s.items, s.new, s.changed, s.removed)))
    out.print(table)
    summary = f"scored {scored} reviews, {queued} alerts queued"
    extras = [(followups.updates, "update"), (followups.reminders, "reminder"), (followups.spikes, "spike alert")]
    summary += "".join(f", {n} {what}{'s' if n != 1 else ''}" for n, what in extras if n)
    if delivery is not None:
        summary += f", {delivery.sent} sent"
        if delivery.summaries:
            summary += f" ({delivery.summaries} flood summar{'ies' if delivery.summaries != 1 else 'y'} with threads)"
        if delivery.retrying:
            summary += f", {delivery.retrying} waiting to retry"
        if delivery.failed:
            summary += f", {delivery.failed} failed"
    out.print(summary)
    problems = [f"source {s.name} {s.outcome}: {s.error}" for s in result.failures]
    problems += [f"alerts: {p}" for p in (delivery.problems if delivery else [])]
    for problem in problems:
        err.print(Text(f"repwatch: {terminal_safe(problem)}"))
    if problems:
        raise typer.Exit(EXIT_FAILURE)


# --- run: the scheduler daemon ---------------------------------------------------------------------


@app.command()
def run(
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
    grace: Annotated[str, typer.Option("--grace", help="on SIGTERM, how long running jobs may finish before they are stopped")] = "60s",
) -> None:
    """The scheduler daemon: crawl each source on its schedule and send the weekly digest, until SIGTERM.

    Each job is a `repwatch crawl --source NAME` or `repwatch digest --send` child process; with a queue: section it
    is queued instead, for `repwatch worker` on any machine. SIGHUP reloads the config (a bad one is reported and the
    old one kept). Exit 0 after SIGTERM/SIGINT, 75 if another `repwatch run` is running.
    """
    from monitor.lock import LockHeld
    from monitor.scheduler import Daemon

    try:
        stop_after = parse_duration(grace)
    except ValueError as exc:
        fail(f"--grace: {exc}")
    try:
        daemon = Daemon(config, grace=stop_after)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(Text(problem if problem.startswith(str(config)) else f"{config}: {problem}"))
        raise typer.Exit(EXIT_FAILURE) from None
    try:
        code = daemon.serve()
    except LockHeld as exc:
        fail(f"another `repwatch run` ({exc.holder.describe()}) is already running on {daemon.config.data_dir}", EXIT_LOCKED)
    raise typer.Exit(code)


@app.command()
def worker(
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-n", min=1, max=64, help="jobs at once (default: queue.concurrency)")] = None,
) -> None:
    """Run the jobs `repwatch run` queues (crawls, deliveries, the digest) on this machine, until SIGTERM.

    Needs a queue: section and Celery (the `queue` extra of the repwatch package). Each job is the same child process
    `repwatch run` would start; a job whose worker dies goes to another one after queue.visibility_timeout. SIGTERM
    lets running jobs finish. Exit 0 after a clean stop, 1 on a config problem.
    """
    loaded = open_config(config)
    if loaded.queue is None:
        fail(f"{config} has no queue: section (url: redis://HOST:6379/0); see the README, \"Many machines\"")
    try:
        from monitor.worker import serve
    except ImportError as exc:
        fail(f"the worker needs Celery ({exc}): pip install 'repwatch[queue]'")
    raise typer.Exit(serve(config, loaded, concurrency=concurrency))


# --- extract / score --------------------------------------------------------------------------------


@app.command()
def extract(
    target: Annotated[str, typer.Argument(help="a saved page (file) or an http(s) URL")],
    spider: Annotated[str, typer.Option("--spider", help="spider name, or auto")] = "auto",
    url: Annotated[str | None, typer.Option("--url", help="the page's original URL, for a saved file")] = None,
) -> None:
    """Parse one page offline and print its reviews as JSON Lines. Exit 3 on a bot-challenge page."""
    from spiders.extract import Blocked, extract_reviews

    status, headers = 200, None
    if target.startswith(("http://", "https://")):
        import httpx

        try:
            response = httpx.get(target, follow_redirects=True, timeout=30, headers={"User-Agent": "repwatch-extract/0.1"})
        except httpx.HTTPError as exc:
            fail(f"cannot fetch {target}: {exc}")
        body, page_url, status, headers = response.content, str(response.url), response.status_code, dict(response.headers)
    else:
        path = Path(target)
        try:
            body = path.read_bytes()
        except OSError as exc:
            fail(f"cannot read {target}: {exc.strerror}")
        page_url = url or path.resolve().as_uri()
    try:
        reviews = extract_reviews(body, page_url, spider, status=status, headers=headers)
    except Blocked as exc:
        err.print(Text(f"blocked: {exc.vendor}"))
        raise typer.Exit(EXIT_BLOCKED) from None
    except ValueError as exc:
        fail(str(exc))
    for review in reviews:
        sys.stdout.write(review.to_json() + "\n")


@app.command()
def score(
    lang: Annotated[str, typer.Option("--lang", help="language of every line, or auto to detect")] = "auto",
    config: OptionalConfig = None,
) -> None:
    """Score JSON Lines from stdin ({"text", "stars"?, "lang"?}); print them with a "sentiment" object.

    With --config: its `sentiment:` settings and the head `repwatch train` fitted; without: the defaults.
    """
    from monitor.sentiment import score_jsonl

    score_jsonl(sys.stdin, sys.stdout, lang=lang, scorer=scorer_for(config))


# score and eval work without a config (a file of reviews in, verdicts out); given one, they use its settings.
OptionalConfig = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="REPWATCH_CONFIG", help="config file (default: none, the built-in settings)"),
]


def scorer_for(config: Path | None, **overrides: Any) -> Any:
    """The configured scorer (with the owner's trained head) when a config is given, else the defaults."""
    from monitor.sentiment import Scorer

    if config is not None:
        return Scorer.from_config(open_config(config), **overrides)
    return Scorer(**overrides)


@app.command("eval")
def evaluate_command(
    files: Annotated[list[Path], typer.Argument(help="labelled JSON Lines, one file per language: <lang>.jsonl")],
    use_stars: Annotated[bool, typer.Option("--use-stars", help="let the scorer see the stars (default: text only)")] = False,
    given_lang: Annotated[bool, typer.Option("--given-lang", help="take the language from the file name, not detection")] = False,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="model threads (default: sentiment.threads)")] = None,
    no_model: Annotated[bool, typer.Option("--no-model", help="without the multilingual model: the lexicon layer only")] = False,
    config: OptionalConfig = None,
) -> None:
    """Measure the scorer on labelled reviews ({"text", "label": neg|neu|pos, "stars"?}): P/R/F1 for negatives, AUC, confusion, reviews/s."""
    from monitor.sentiment.evaluate import evaluate, format_report

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        fail(f"no such file: {', '.join(missing)}")
    overrides: dict[str, Any] = {"threads": threads} if threads else {}
    if no_model:
        overrides["model"] = False
    scorer = scorer_for(config, **overrides)
    result = evaluate(files, scorer=scorer, use_stars=use_stars, given_lang=given_lang)
    if scorer.fallback_reason and not no_model:
        err.print(Text(f"repwatch: measured without the model: {scorer.fallback_reason}"))
    if output == "json":
        sys.stdout.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")
    else:
        out.print(Text(format_report(result)))


@app.command()
def label(
    review_id: Annotated[int | None, typer.Argument(help="a review's id (`repwatch reviews --format json` shows it)")] = None,
    value: Annotated[str | None, typer.Argument(metavar="neg|neu|pos", help="what the review really is")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="a CSV with columns id,label: many labels at once")] = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Record your own label for reviews the scorer got wrong: it replaces the verdict, and `repwatch train` learns from it."""
    from monitor.sentiment.training import LabelError, check_label, read_label_csv, record_labels

    try:
        if csv_file is not None:
            if review_id is not None or value is not None:
                fail("give REVIEW_ID LABEL or --csv FILE, not both")
            if not csv_file.is_file():
                fail(f"no such file: {csv_file}")
            rows = read_label_csv(csv_file)
        elif review_id is None or value is None:
            fail("give REVIEW_ID and a label (neg, neu or pos), or --csv FILE")
        else:
            rows = [(review_id, check_label(value))]
    except LabelError as exc:
        for problem in str(exc).splitlines():
            err.print(Text(f"repwatch: {problem}"))
        raise typer.Exit(EXIT_FAILURE) from None
    sessions = open_database(open_config(config))
    missing = record_labels(sessions, rows)
    recorded = len({review_id for review_id, _ in rows}) - len(missing)
    out.print(f"labelled {recorded} review{'s' if recorded != 1 else ''}")
    if missing:
        fail(f"no review with id {', '.join(map(str, missing[:20]))}{' …' if len(missing) > 20 else ''}")


@app.command()
def train(
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
    force: Annotated[bool, typer.Option("--force", help="keep the new head even if it does worse on the held-out labels")] = False,
) -> None:
    """Fit the scorer to your labelled reviews (`repwatch label`); report F1 for negatives before and after on a held-out quarter."""
    from monitor.sentiment import Scorer
    from monitor.sentiment.training import LabelError, train as fit_head

    loaded = open_config(config)
    sessions = open_database(loaded)
    try:
        report = fit_head(sessions, Scorer.from_config(loaded), force=force)
    except LabelError as exc:
        fail(str(exc))
    counts = ", ".join(f"{n} {label}" for label, n in report.counts.items())
    out.print(f"{report.labels} labelled reviews ({counts}); {report.held_out} held out for the test")
    for name, m in (("before", report.before), ("after", report.after)):
        out.print(f"  {name:<6} F1(neg) {m['f1']:.3f}  precision {m['precision']:.3f}  recall {m['recall']:.3f}")
    if report.saved is not None:
        out.print(f"saved {report.saved}: scoring uses it from now on")
    else:
        out.print("not saved: the new head did worse on the held-out reviews (--force keeps it anyway)")


# --- reviews ----------------------------------------------------------------------------------------


@app.command()
def reviews(
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
    negative: Annotated[bool, typer.Option("--negative", help="only negative reviews")] = False,
    since: Annotated[str | None, typer.Option("--since", help="first seen within, e.g. 7d or 24h")] = None,
    source: Annotated[str | None, typer.Option("--source", "-s")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    output: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
    unanswered: Annotated[bool, typer.Option("--unanswered", help="negative reviews with no reply on the site and not handled, oldest first")] = False,
) -> None:
    """List stored reviews, newest first (--unanswered: the ones still waiting for a reply, oldest first)."""
    from sqlalchemy import select

    from models.tables import Review, Source

    if output not in ("table", "json", "csv"):
        fail(f"--format must be table, json or csv, not {output!r}")
    window: timedelta | None = None
    if since:
        try:
            window = parse_duration(since)
        except ValueError as exc:
            fail(f"--since: {exc}")
    sessions = open_database(open_config(config))
    query = select(Review, Source.name).join(Source).order_by(Review.published_at.desc().nulls_last(), Review.id.desc())
    now = datetime.now(UTC)
    if unanswered:
        from monitor.followups import unanswered as unanswered_condition

        query = select(Review, Source.name).join(Source).where(unanswered_condition(now)).order_by(
            Review.first_seen_at, Review.published_at.asc().nulls_last(), Review.id)
    if negative:
        query = query.where(Review.sentiment_label == "neg")
    if window is not None:
        # The window's rows by their index first, then the order: as a plain condition, SQLite walked the whole
        # published_at index when fewer than --limit rows matched (2 s at a million reviews; bench/bench_scale.py).
        in_window = select(Review.id).where(Review.first_seen_at >= datetime.now(UTC) - window)
        if negative:
            in_window = in_window.where(Review.sentiment_label == "neg")
        query = query.where(Review.id.in_(in_window))
    if source:
        query = query.where(Source.name == source)
    with sessions() as session:
        rows = session.execute(query.limit(limit)).all()
    records = [
        {
            "id": r.id,
            "source": name,
            "published_at": r.published_at.isoformat() if r.published_at else None,
            "rating": r.rating,
            "label": r.sentiment_label,
            "severity": r.severity,
            "lang": r.sentiment_lang or r.language,
            "author": r.author,
            "title": r.title,
            "body": r.body,
            "why": r.sentiment_why,
            "url": r.url,
            "reply": r.reply_body,
            "status": r.status,
            # The customer has waited since they posted; without a date, since we saw it.
            "waiting_hours": round((now - (r.published_at or r.first_seen_at)).total_seconds() / 3600, 1) if unanswered else None,
        }
        for r, name in rows
    ]
    if output == "json":
        for record in records:
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    if output == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(records[0]) if records else ["id"])
        writer.writeheader()
        writer.writerows(records)
        return
    if unanswered:
        out.print(reviews_table(records, title=f"unanswered negative reviews ({len(records)}{'+' if len(records) == limit else ''})"))
        if records:
            out.print("Reply on the site, or `repwatch handle ID --note \"...\"` when answered another way.")
        return
    out.print(reviews_table(records))


@app.command()
def deliver(config: ConfigOption = Path(DEFAULT_CONFIG_NAME)) -> None:
    """Without crawling: score what waits, queue reminders, updates, spikes and source health, send what is due.

    `repwatch run` runs it every few minutes (schedule.deliver), so retries and reminders do not wait for a crawl.
    """
    from alerts.outbox import deliver_due
    from monitor.followups import queue_followups
    from monitor.lock import OUTBOX_LOCK, acquire, database_lock
    from monitor.scoring import score_pending
    from monitor.sentiment import Scorer

    loaded = open_config(config)
    sessions = open_database(loaded)
    # The same one-at-a-time as `crawl`, on every machine that shares the PostgreSQL database.
    with acquire(loaded.data_dir, OUTBOX_LOCK, wait=True), database_lock(loaded.database_url(), OUTBOX_LOCK):
        scored, queued = score_pending(sessions, loaded, Scorer.from_config(loaded))
        followups = queue_followups(sessions, loaded)
        report = deliver_due(sessions, loaded)
    parts = [(scored, "scored"), (queued, "alerts queued"), (followups.updates, "updates"),
             (followups.reminders, "reminders"), (followups.spikes, "spike alerts"), (followups.health, "source notices"),
             (report.sent, "sent"), (report.retrying, "waiting to retry"), (report.failed, "failed")]
    out.print(", ".join(f"{n} {what}" for n, what in parts if n) or "nothing to do")
    for problem in report.problems:
        err.print(Text(f"repwatch: alerts: {terminal_safe(problem)}"))
    if report.problems:
        raise typer.Exit(EXIT_FAILURE)


def queue_line(queue: Any) -> Text:
    """One line on the queue: its jobs and the workers that answered, or why it could not be asked."""
    if queue.error:
        return Text(f"queue: {queue.error}", style="red")
    workers = (f"{len(queue.workers)} worker{'s' if len(queue.workers) != 1 else ''} answered: "
               + ", ".join(queue.workers)) if queue.workers else "no worker answered"
    line = f"queue: {queue.where}: {queue.waiting} waiting, {queue.running} running; {workers}"
    return Text(terminal_safe(line, 1000), style="green" if queue.workers else "yellow")


@app.command()
def status(
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """The daemon (running?), each source's state and next crawl, and what waits in the outbox."""
    from monitor.status import gather_status

    if output not in ("table", "json"):
        fail(f"--format must be table or json, not {output!r}")
    loaded = open_config(config)
    report = gather_status(loaded, open_database(loaded))
    if output == "json":
        sys.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False) + "\n")
        return

    def when(moment: datetime | None) -> str:
        return f"{moment:%m-%d %H:%M}" if moment else "—"

    daemon = report.daemon
    out.print(Text(f"daemon: {daemon.note}", style="green" if daemon.running else "yellow"))
    if report.queue is not None:
        out.print(queue_line(report.queue))
    table = Table(title="sources (times UTC)", title_justify="left")
    for column in ("source", "state", "failures", "last crawl", "outcome", "last success", "next crawl", "schedule"):
        table.add_column(column, no_wrap=column in ("source", "last crawl", "last success", "next crawl"))
    for s in report.sources:
        table.add_row(s.name, Text(s.state, style="green" if s.state == "ok" else "red"), str(s.failures),
                      when(s.last_crawl), s.last_outcome or "—", when(s.last_success), when(s.next_crawl), s.schedule)
    out.print(table)
    if report.outbox:
        table = Table(title="outbox (times UTC)", title_justify="left")
        for column in ("destination", "pending", "due now", "oldest", "next retry", "failed", "last error"):
            table.add_column(column, overflow="fold")
        for d in report.outbox:
            table.add_row(d.destination, str(d.pending), str(d.due_now), when(d.oldest_pending), when(d.next_retry),
                          Text(str(d.failed), style="red" if d.failed else ""), Text(terminal_safe(d.last_error or "", 200)))
        out.print(table)
    else:
        out.print("outbox: empty, everything delivered")
    out.print(f"reviews waiting to be scored: {report.unscored} · unanswered negative reviews: {report.unanswered}")


@app.command()
def handle(
    review_id: Annotated[int, typer.Argument(help="the review's id (repwatch reviews shows it)")],
    note: Annotated[str | None, typer.Option("--note", help="what was done, e.g. 'called the customer, refunded'")] = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Mark a review handled: no reply reminder for it, its Slack alert updated, the digest lists it as handled."""
    from alerts.outbox import deliver_due
    from monitor.followups import NoSuchReview, handle_review

    loaded = open_config(config)
    sessions = open_database(loaded)
    try:
        review, queued = handle_review(sessions, review_id, note=note)
    except NoSuchReview as exc:
        fail(str(exc))
    out.print(Text(f"review #{review.id} marked handled" + (f" ({terminal_safe(note, 200)})" if note else "")))
    if queued:
        report = deliver_due(sessions, loaded)
        for problem in report.problems:
            err.print(Text(f"repwatch: alerts: {terminal_safe(problem)}"))
        if report.problems:
            raise typer.Exit(EXIT_FAILURE)


def reviews_table(records: list[dict[str, Any]], title: str = "reviews") -> Table:
    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    waiting = any(r.get("waiting_hours") is not None for r in records)
    table.add_column("id", justify="right")
    table.add_column("when")
    table.add_column("source")
    table.add_column("★", justify="right")
    table.add_column("verdict")
    table.add_column("lang")
    if waiting:
        table.add_column("waiting", justify="right")
    table.add_column("review", overflow="fold", max_width=70)
    colours = {"neg": "red", "pos": "green", "neu": "yellow"}
    for r in records:
        when = (r["published_at"] or "")[:10]
        stars = "" if r["rating"] is None else f"{r['rating']:g}"
        text = terminal_safe(f"{r['title']}: {r['body']}" if r["title"] else r["body"], 160)
        label = r["label"] or "pending"
        verdict = Text(label, style=colours.get(label, ""))
        hours = r.get("waiting_hours") or 0
        extra = [f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} d"] if waiting else []
        table.add_row(str(r["id"]), when, Text(r["source"]), stars, verdict, r["lang"] or "", *extra, Text(text))
    return table


@app.command()
def history(
    review_id: Annotated[int, typer.Argument(help="the review's id (the `id` of `repwatch reviews --format json`)")],
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """What a review said on each date it changed, with the hash of the raw snippet it was read from."""
    from sqlalchemy import select

    from models.tables import Review, ReviewVersion

    sessions = open_database(open_config(config))
    with sessions() as session:
        review = session.get(Review, review_id)
        if review is None:
            fail(f"no review with id {review_id}")
        versions = session.scalars(
            select(ReviewVersion).where(ReviewVersion.review_id == review_id).order_by(ReviewVersion.id)
        ).all()
        records = [
            {"seen_at": v.seen_at.isoformat(), "change": v.change, "rating": v.rating, "title": v.title,
             "body": v.body, "reply": v.reply_body, "snippet_sha256": v.snippet_hash, "content_sha256": v.content_hash}
            for v in versions
        ]
        url, removed_at = review.url, review.removed_at
    if output == "json":
        for record in records:
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    title = f"review {review_id}: {url}" + (f" (removed from the site {removed_at:%Y-%m-%d %H:%M} UTC)" if removed_at else "")
    table = Table(title=Text(terminal_safe(title)), title_justify="left")
    for column in ("seen (UTC)", "change", "★", "text", "snippet sha256"):
        table.add_column(column, overflow="fold")
    for r in records:
        text = terminal_safe(f"{r['title']}: {r['body']}" if r["title"] else r["body"], 300)
        if r["reply"]:
            text += terminal_safe(f"\n↳ reply: {r['reply']}", 200)
        stars = "" if r["rating"] is None else f"{r['rating']:g}"
        table.add_row(r["seen_at"][:16].replace("T", " "), r["change"], stars, Text(text), (r["snippet_sha256"] or "")[:16])
    out.print(table)


# --- digest ---------------------------------------------------------------------------------------


@app.command()
def digest(
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
    week: Annotated[str | None, typer.Option("--week", help="ISO week, e.g. 2026-W47; default: the last complete week (UTC)")] = None,
    business: Annotated[str | None, typer.Option("--business", "-b", help="only this business")] = None,
    preview: Annotated[Path | None, typer.Option("--preview", help="write the HTML to this file (chart inline) to open in a browser")] = None,
    send: Annotated[bool, typer.Option("--send", help="email it to digest.to through digest.smtp")] = False,
) -> None:
    """The weekly digest per business: new reviews, ratings, sentiment, negative and unanswered reviews, a chart.

    Without --send or --preview it prints the plain-text version.
    """
    import difflib

    from alerts.base import DeliveryError
    from alerts.digest import IsoWeek, build_digest, build_message, chart_data_uri, render_chart, render_html, render_text
    from alerts.email import send_email
    from monitor.topics import TopicMatcher

    if send and preview:
        fail("use --send or --preview, not both")
    try:
        chosen = IsoWeek.parse(week) if week else IsoWeek.last_complete(datetime.now(UTC))
    except ValueError as exc:
        fail(f"--week: {exc}")
    loaded = open_config(config)
    names = [b.name for b in loaded.businesses]
    if business is not None:
        if business not in names:
            hint = difflib.get_close_matches(business, names, n=1)
            fail(f"no business named {business!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        names = [business]
    if not names:
        fail(f"{config} lists no businesses")
    if send and loaded.digest is None:
        fail(f"{config} has no digest: section (SMTP server and recipients); see `repwatch init`")
    sessions = open_database(loaded)
    with sessions() as session:
        topics = TopicMatcher.from_config(loaded)
        digests = [build_digest(session, name, chosen, topics=topics) for name in names]
    failed = False
    for index, item in enumerate(digests):
        if preview is not None:
            path = preview if len(digests) == 1 else preview.with_name(f"{preview.stem}-{index + 1}{preview.suffix or '.html'}")
            try:
                path.write_text(render_html(item, chart_data_uri(render_chart(item))), encoding="utf-8")
            except OSError as exc:
                fail(f"cannot write {path}: {exc.strerror}")
            out.print(Text(f"{path.resolve()}" + (f"  ({item.business})" if len(digests) > 1 else "")))
        elif send:
            try:
                report = send_email(build_message(item, loaded.digest), loaded.digest.smtp)
            except DeliveryError as exc:
                failed = True
                later = " (temporary: try again later)" if exc.retryable else ""
                err.print(Text(f"repwatch: digest for {item.business} not sent: {exc}{later}"))
                continue
            out.print(Text(f"{item.business}: sent the {item.week.label} digest to {', '.join(report.accepted)}"))
            if report.refused:
                failed = True
                refused = "; ".join(f"{rcpt}: {reply}" for rcpt, reply in report.refused.items())
                err.print(Text(f"repwatch: digest for {item.business}: refused for {refused}"))
        else:
            sys.stdout.write(render_text(item))
    if failed:
        raise typer.Exit(EXIT_FAILURE)


# --- sources / alerts -------------------------------------------------------------------------------


@sources_app.command("list")
def sources_list() -> None:
    """The source kinds repwatch can crawl, with their help."""
    from spiders.registry import load_spiders

    table = Table(title="source kinds", title_justify="left")
    table.add_column("kind")
    table.add_column("site")
    table.add_column("what it reads", overflow="fold")
    for name, spider in sorted(load_spiders().items()):
        doc = help_text(spider.__doc__)
        table.add_row(name, spider.site_name or name, Text(doc))  # Text: `div.review[data-id]` is not markup
    out.print(table)


def help_text(docstring: str | None) -> str:
    """A docstring for a table cell: prose paragraphs reflowed, indented blocks (config examples) kept as written."""
    paragraphs = inspect.cleandoc(docstring or "").split("\n\n")
    return "\n\n".join(p if p.startswith(" ") else " ".join(p.split()) for p in paragraphs)


@sources_app.command("health")
def sources_health(config: ConfigOption = Path(DEFAULT_CONFIG_NAME)) -> None:
    """State of every configured source: ok, blocked, broken, failing, or new (never crawled)."""
    from sqlalchemy import select

    from sqlalchemy import func

    from models.tables import CrawlRun, Source
    from monitor.crawl import run_notes, sync_config

    loaded = open_config(config)
    sessions = open_database(loaded)
    with sessions.begin() as session:
        sync_config(session, loaded)
        rows = session.scalars(select(Source).order_by(Source.name)).all()
        latest = select(func.max(CrawlRun.id)).group_by(CrawlRun.source_id)
        stats = {run.source_id: run.stats for run in session.scalars(select(CrawlRun).where(CrawlRun.id.in_(latest)))}
        table = Table(title="sources", title_justify="left")
        for column in ("source", "kind", "state", "last success", "failures", "last error", "last run's notes"):
            table.add_column(column)
        colours = {"ok": "green", "new": "yellow"}
        for s in rows:
            table.add_row(
                s.name,
                s.kind,
                Text(s.state, style=colours.get(s.state, "red")),
                s.last_success_at.strftime("%Y-%m-%d %H:%M") if s.last_success_at else "never",
                str(s.consecutive_failures),
                Text(terminal_safe(s.last_error, 120)),
                Text("; ".join(run_notes(stats.get(s.id)))),
            )
    out.print(table)


@alerts_app.command("test")
def alerts_test(
    kind: Annotated[str, typer.Argument(help="notifier kind (slack, webhook), or email: the digest: SMTP settings")],
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Send a sample alert through each configured notifier of this kind and say what happened.

    `email` sends a short test email to digest.to through digest.smtp instead.
    """
    from alerts.base import DeliveryError
    from alerts.outbox import build_notifiers

    loaded = open_config(config)
    if kind == "email":
        alerts_test_email(loaded, config)
        return
    chosen = {name: n for name, n in build_notifiers(loaded).items() if n.kind == kind}
    if not chosen:
        fail(f"no notifier of kind {kind!r} in {config}")
    failed = False
    for name, notifier in chosen.items():
        try:
            result = notifier.send_test()
        except DeliveryError as exc:
            failed = True
            err.print(Text(f"{name}: FAILED: {exc}"))
        else:
            out.print(Text(f"{name}: sent" + (f" ({result.remote_id})" if result.remote_id else "")))
    if failed:
        raise typer.Exit(EXIT_FAILURE)


def alerts_test_email(loaded: Any, config: Path) -> None:
    """A short test email through the digest's SMTP settings; exit 1 with one line if nobody got it."""
    from email.message import EmailMessage
    from email.utils import format_datetime, make_msgid

    from alerts.base import DeliveryError
    from alerts.email import mailbox, send_email

    settings = loaded.digest
    if settings is None:
        fail(f"{config} has no digest: section (SMTP server and recipients); see `repwatch init`")
    sender = mailbox(settings.sender)
    message = EmailMessage()
    message["Subject"] = "repwatch test email"
    message["From"] = sender
    message["To"] = [mailbox(address) for address in settings.to]
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid("test", domain=sender.domain or "repwatch.invalid")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        "This is a test email from repwatch (repwatch alerts test email).\n"
        "If you can read this, the weekly digest can reach you through these SMTP settings.\n"
    )
    where = f"{settings.smtp.host}:{settings.smtp.effective_port()}"
    try:
        report = send_email(message, settings.smtp)
    except DeliveryError as exc:
        fail(f"test email not sent: {exc}" + (" (temporary: try again later)" if exc.retryable else ""))
    out.print(Text(f"email: sent a test email to {', '.join(report.accepted)} via SMTP {where}"))
    if report.refused:
        fail("test email refused for " + "; ".join(f"{rcpt}: {reply}" for rcpt, reply in report.refused.items()))


def main(argv: list[str] | None = None) -> None:
    """Console entry point (argv: sys.argv[1:] when None): one line on stderr for anything unexpected, a traceback
    only with REPWATCH_DEBUG=1. Always ends in SystemExit with the exit code."""
    try:
        app(args=argv, prog_name="repwatch")
    except KeyboardInterrupt:
        err.print("repwatch: interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence for a one-line error
        if os.environ.get("REPWATCH_DEBUG"):
            raise
        err.print(Text(f"repwatch: {describe_error(exc)}"))
        sys.exit(EXIT_FAILURE)


def describe_error(exc: BaseException) -> str:
    """One line for an unexpected error, without secrets (database URLs lose their passwords)."""
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        original = getattr(exc, "orig", None)
        detail = str(original or exc).splitlines()[0]
        if "database or disk is full" in detail or "disk I/O error" in detail:
            return "disk full: the database cannot grow (nothing half-written; free space and run again)"
        if "database is locked" in detail:
            return "database error: database is locked by another process (waited 30 s); try again"
        return f"database error: {redact_urls(detail)}"
    # ENOSPC, EFBIG (a file-size limit), EDQUOT (a quota): the same remedy for the operator
    if isinstance(exc, OSError) and exc.errno in (28, 27, 122):
        return f"disk full: {exc.filename or ''} (nothing half-written; free space and run again)"
    return f"{type(exc).__name__}: {redact_urls(str(exc).splitlines()[0] if str(exc) else '')}"


def redact_urls(text: str) -> str:
    import re

    return re.sub(r"(\w+://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)
