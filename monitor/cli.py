"""The `repwatch` command: every verb an operator (or the scheduler) runs."""
from __future__ import annotations

import csv
import inspect
import io
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from models.textsafe import terminal_safe
from models.vocab import format_when, parse_duration

# Each verb imports the service it calls when it runs: the crawler, the database layer and the model cost ~1.5 s to
# import, which `repwatch --help`, `init` or `score` need not pay (0.5 s instead of 2 s). The floors are checked
# on these imports all the same (import-linter reads function bodies).
if TYPE_CHECKING:
    from monitor.config import Config

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

DEFAULT_CONFIG_NAME = "config.yaml"
EXIT_FAILURE = 1
EXIT_BLOCKED = 3
# EXIT_LOCKED (75, EX_TEMPFAIL) comes from monitor.service.locks: every source asked for was being crawled by another process

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="REPWATCH_CONFIG", help="config file", show_default=True),
]


def plural(n: int, word: str, many: str | None = None) -> str:
    """"1 review", "2 reviews" ("1 business", "2 businesses" with `many`)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    err.print(Text(f"repwatch: {message}"))
    raise typer.Exit(code)


# Wide enough for any table's natural width: where nobody reads a terminal, nothing is cut to fit one.
UNBOUNDED_WIDTH = 10_000


def show(table: Table) -> None:
    """Print a table whole. Not on a terminal (cron's log, a pipe, a file) at its natural width, names and dates never
    cut; on a terminal narrower than the table, long cells wrap onto more lines instead of ending in "…"."""
    if out.is_terminal:
        for column in table.columns:
            column.no_wrap, column.overflow = False, "fold"
        out.print(table)
    else:
        out.print(table)  # at UNBOUNDED_WIDTH (main)


def open_config(path: Path) -> Config:
    from monitor.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(Text(problem if problem.startswith(str(path)) else f"{path}: {problem}"))
        raise typer.Exit(EXIT_FAILURE) from None


def print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("repwatch")
        except PackageNotFoundError:  # run from a checkout that was never installed
            found = "(not installed: run from a source tree)"
        out.print(f"repwatch {found}")
        raise typer.Exit()


@app.callback()
def options(
    version: Annotated[bool, typer.Option("--version", callback=print_version, is_eager=True, help="print repwatch's version and exit")] = False,
) -> None:
    """repwatch: watch review sites, score what people say, alert on negative reviews."""


# --- init / config ----------------------------------------------------------------------------------


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="where to write it")] = Path(DEFAULT_CONFIG_NAME),
    force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False,
) -> None:
    """Write a commented config.yaml to start from."""
    if path.exists() and not force:
        fail(f"{path.resolve()} exists; use --force to overwrite it, or start in a directory of your own "
             "(`mkdir -p ~/repwatch && cd ~/repwatch && repwatch init`, or `repwatch init ~/repwatch/config.yaml`)")
    template = Path(__file__).parent / "templates" / "config.yaml"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")
    out.print(f"wrote {path}: edit the businesses and sources, set SLACK_BOT_TOKEN, then `repwatch config check`")


@config_app.command("check")
def config_check(config: ConfigOption = Path(DEFAULT_CONFIG_NAME)) -> None:
    """Validate the config: exit 1 with one line per problem."""
    from monitor.config import config_notes, literal_secrets

    loaded = open_config(config)
    for note in literal_secrets(loaded, config.read_text(encoding="utf-8")) + config_notes(loaded):
        err.print(Text(f"{config}: {note}"))
    sources = loaded.sources()
    out.print(f"{config}: OK ({plural(len(loaded.businesses), 'business', 'businesses')}, "
              f"{plural(len(sources), 'source')}, {plural(len(loaded.notifiers), 'notifier')})")


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
    from monitor.config import ConfigError
    from monitor.schedules import format_duration
    from monitor.service import pipeline
    from monitor.service.locks import EXIT_LOCKED

    loaded = open_config(config)
    for name in source or []:
        try:
            loaded.source(name)
        except ConfigError as exc:
            fail(exc.problems[0])
    progress, stage = crawl_display()
    report = pipeline.crawl(loaded, source, full=full, send=not no_alerts, stage=stage, progress=progress)
    for name, holder in report.skipped:
        err.print(Text(f"repwatch: source {name}: skipped, another crawl ({holder}) holds its lock"))
    if report.all_locked:
        raise typer.Exit(EXIT_LOCKED)
    result, scored, queued, followups, delivery = (report.result, report.scored, report.queued, report.followups,
                                                   report.delivery)

    table = Table(title="crawl", title_justify="left")
    for column in ("source", "outcome", "requests", "pages", "reviews", "new", "changed", "removed"):
        table.add_column(column, justify="right" if column not in ("source", "outcome") else "left")
    for s in result.sources:
        style = "green" if s.outcome == "ok" else "red"
        table.add_row(s.name, Text(s.outcome, style=style), *(str(v) for v in (s.requests, s.pages, s.items, s.new, s.changed, s.removed)))
    show(table)
    summary = f"scored {plural(scored, 'review')}, {plural(queued, 'alert')} queued"
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
    if report.baselines:
        waiting = report.baseline_unanswered
        line = (f"{plural(report.baseline_stored, 'review')} stored as a silent baseline by "
                f"{'the first crawl' if len(report.baselines) == 1 else 'first crawls'} (no alerts for reviews older "
                f"than {format_duration(loaded.alerting.baseline_window)})")
        if waiting:
            line += (f", {waiting} of them negative and unanswered: "
                     "`repwatch reviews --unanswered --include-baseline`")
        out.print(Text(line))
    for note in report.notes:  # ok sources that met trouble on the way: part of the summary, not a failure
        out.print(Text(terminal_safe(note)))
    for problem in report.problems:
        err.print(Text(f"repwatch: {terminal_safe(problem)}"))
    if report.problems:
        raise typer.Exit(EXIT_FAILURE)


def crawl_display() -> tuple[Callable[[dict[str, Any]], None], Callable[[str], Any]]:
    """How a crawl shows its progress: on a terminal, a live line per source (pages and reviews read as they come);
    otherwise (cron, a pipe) one line per source when it is done. Returns (progress callback, stage)."""
    if not err.is_terminal:
        def line(event: dict[str, Any]) -> None:
            if event.get("done"):
                err.print(Text(f"{terminal_safe(str(event['source']), 200)}: {event.get('outcome')}, "
                               f"{plural(int(event.get('pages', 0)), 'page')}, "
                               f"{plural(int(event.get('reviews', 0)), 'review')} read, {event.get('seconds', 0):.1f} s"))
        return line, err.status

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                   TextColumn("{task.fields[pages]} · {task.fields[reviews]}"), TimeElapsedColumn(), console=err)
    tasks: dict[str, Any] = {}

    def update(event: dict[str, Any]) -> None:
        name = terminal_safe(str(event.get("source", "")), 100)
        if name not in tasks:
            tasks[name] = bar.add_task(name, total=None, pages="", reviews="")
        done = bool(event.get("done"))
        bar.update(tasks[name], pages=plural(int(event.get("pages", 0)), "page"),
                   reviews=plural(int(event.get("reviews", 0)), "review") + (" stored" if done else " read"),
                   description=f"{name}: {event.get('outcome')}" if done else name)
        if done:
            bar.update(tasks[name], total=1, completed=1)

    def stage(text: str) -> Any:
        return bar if text.startswith("crawling") else err.status(text)

    return update, stage


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
    from monitor.config import ConfigError
    from monitor.scheduler import Daemon
    from monitor.service.locks import EXIT_LOCKED, LockHeld

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
        fail(f"{config} has no queue: section (url: redis://HOST:6379/0); see docs/many-machines.md")
    try:
        from monitor.worker import serve
    except ImportError as exc:
        fail(f"the worker needs Celery ({exc}): install the queue extra, see docs/operations.md#installing")
    raise typer.Exit(serve(config, loaded, concurrency=concurrency))


# --- extract / score --------------------------------------------------------------------------------


@app.command()
def extract(
    target: Annotated[str, typer.Argument(help="a saved page (file) or an http(s) URL")],
    spider: Annotated[str, typer.Option("--spider", help="spider name, or auto")] = "auto",
    url: Annotated[str | None, typer.Option("--url", help="the page's original URL, for a saved file")] = None,
) -> None:
    """Parse one page offline and print its reviews as JSON Lines. Exit 3 on a bot-challenge page."""
    from spiders.extract import Blocked, PageError, extract_reviews, load_page

    try:
        page = load_page(target, url)
        reviews = extract_reviews(page.body, page.url, spider, status=page.status, headers=page.headers)
    except Blocked as exc:
        err.print(Text(f"blocked: {exc.vendor}"))
        raise typer.Exit(EXIT_BLOCKED) from None
    except (PageError, ValueError) as exc:
        fail(str(exc))
    for review in reviews:
        sys.stdout.write(review.to_json() + "\n")
    if not reviews:
        where = terminal_safe(page.url, 200)
        if spider == "auto":
            fail(f"{where}: no reviews found on this page (is it the page that lists them?)")
        fail(f"{where}: --spider {spider} reading found no reviews; try --spider auto, or another kind "
             "(`repwatch sources list`)")


@app.command()
def score(
    lang: Annotated[str, typer.Option("--lang", help="language of every line, or auto to detect")] = "auto",
    config: OptionalConfig = None,
) -> None:
    """Score JSON Lines from stdin ({"text", "stars"?, "lang"?}); print them with a "sentiment" object.

    With --config: its `sentiment:` settings and the head `repwatch train` fitted; without: the defaults.
    """
    from monitor.sentiment import score_jsonl

    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="surrogateescape")  # a byte that is not UTF-8 fails its line, not the command
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
    with_neutral: Annotated[bool, typer.Option("--with-neutral", help="count neutral (3★) reviews as not negative (the older measure) instead of leaving them out")] = False,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="model threads (default: sentiment.threads)")] = None,
    no_model: Annotated[bool, typer.Option("--no-model", help="without the multilingual model: the lexicon layer only")] = False,
    config: OptionalConfig = None,
) -> None:
    """Measure the scorer on labelled reviews ({"text", "label": neg|neu|pos, "stars"?}): P/R/F1 for negatives against positives, neutrals flagged, AUC, confusion, reviews per CPU-second."""
    from monitor.sentiment.evaluate import LabelledFileError, evaluate, format_report

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        fail(f"no such file: {', '.join(missing)}")
    overrides: dict[str, Any] = {"threads": threads} if threads else {}
    if no_model:
        overrides["model"] = False
    scorer = scorer_for(config, **overrides)
    try:
        result = evaluate(files, scorer=scorer, use_stars=use_stars, given_lang=given_lang, with_neutral=with_neutral)
    except LabelledFileError as exc:
        for problem in exc.problems:
            err.print(Text(f"repwatch: {terminal_safe(problem)}"))
        raise typer.Exit(EXIT_FAILURE) from None
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
    from monitor.sentiment.training import (
        LabelError,
        check_label,
        read_label_csv,
        record_labels,
    )
    from monitor.service.pipeline import open_sessions

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
    sessions = open_sessions(open_config(config))
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
    from monitor.sentiment.training import LabelError
    from monitor.sentiment.training import train as fit_head
    from monitor.service.pipeline import open_sessions

    loaded = open_config(config)
    sessions = open_sessions(loaded)
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
    since: Annotated[str | None, typer.Option("--since", help="published on the site within, e.g. 7d or 24h (the review's own date)")] = None,
    seen_since: Annotated[str | None, typer.Option("--seen-since", help="first seen by repwatch within, e.g. 7d or 24h (a first crawl sees years of history at once)")] = None,
    source: Annotated[str | None, typer.Option("--source", "-s", help="only this source")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    output: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
    unanswered: Annotated[bool, typer.Option("--unanswered", help="negative reviews with no reply on the site and not handled, oldest first")] = False,
    include_baseline: Annotated[bool, typer.Option("--include-baseline", help="with --unanswered: also the older negatives a source's first crawl stored without an alert (the silent baseline)")] = False,
) -> None:
    """List stored reviews, newest first (--unanswered: the ones still waiting for a reply, oldest first)."""
    from monitor.config import ConfigError
    from monitor.service.reviews import ReviewQuery, baseline_waiting, list_reviews

    if output not in ("table", "json", "csv"):
        fail(f"--format must be table, json or csv, not {output!r}")
    if include_baseline and not unanswered:
        fail("--include-baseline goes with --unanswered")
    windows: dict[str, timedelta | None] = {}
    for option, value in (("--since", since), ("--seen-since", seen_since)):
        try:
            windows[option] = parse_duration(value) if value else None
        except ValueError as exc:
            fail(f"{option}: {exc}")
    loaded = open_config(config)
    if source is not None:
        try:
            loaded.source(source)
        except ConfigError as exc:
            fail(exc.problems[0])
    query = ReviewQuery(negative=negative, seen_within=windows["--seen-since"], source=source, limit=limit,
                        unanswered=unanswered, include_baseline=include_baseline,
                        published_within=windows["--since"])
    records = list_reviews(loaded, query)
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
        show(reviews_table(records, title=f"unanswered negative reviews ({len(records)}{'+' if len(records) == limit else ''})"))
        if records:
            out.print("Reply on the site, or `repwatch handle ID --note \"...\"` when answered another way.")
        left_out = 0 if include_baseline else baseline_waiting(loaded, source=source)
        if left_out:
            out.print(Text(f"Not listed: {plural(left_out, 'older negative review')} from the silent baseline "
                           "(stored by a first crawl, never alerted): add --include-baseline to see them."))
        return
    show(reviews_table(records))


@app.command()
def deliver(config: ConfigOption = Path(DEFAULT_CONFIG_NAME)) -> None:
    """Without crawling: score what waits, queue reminders, updates, spikes and source health, send what is due.

    `repwatch run` runs it every few minutes (schedule.deliver), so retries and reminders do not wait for a crawl.
    """
    from monitor.service import pipeline

    done = pipeline.deliver(open_config(config))
    scored, queued, followups, report = done.scored, done.queued, done.followups, done.delivery
    parts = [f"{scored} scored", plural(queued, "alert") + " queued", plural(followups.updates, "update"),
             plural(followups.reminders, "reminder"), plural(followups.spikes, "spike alert"),
             plural(followups.health, "source notice"), f"{report.sent} sent", f"{report.retrying} waiting to retry",
             f"{report.failed} failed"]
    out.print(", ".join(part for part in parts if not part.startswith("0 ")) or "nothing to do")
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
    from monitor.service.pipeline import open_sessions
    from monitor.service.status import gather_status

    if output not in ("table", "json"):
        fail(f"--format must be table or json, not {output!r}")
    loaded = open_config(config)
    report = gather_status(loaded, open_sessions(loaded))
    if output == "json":
        sys.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False) + "\n")
        return

    def when(moment: datetime | None) -> str:  # the year only when it is not this one
        if moment is None:
            return "—"
        return f"{moment:%m-%d %H:%M}" if moment.year == report.now.year else f"{moment:%Y-%m-%d %H:%M}"

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
    show(table)
    if report.outbox:
        table = Table(title="outbox (times UTC)", title_justify="left")
        for column in ("destination", "pending", "due now", "oldest", "next retry", "failed", "last error"):
            table.add_column(column, overflow="fold")
        for d in report.outbox:
            table.add_row(d.destination, str(d.pending), str(d.due_now), when(d.oldest_pending), when(d.next_retry),
                          Text(str(d.failed), style="red" if d.failed else ""), Text(terminal_safe(d.last_error or "", 200)))
        show(table)
    else:
        out.print("outbox: empty, everything delivered")
    out.print(f"reviews waiting to be scored: {report.unscored} · unanswered negative reviews: {report.unanswered}")


@app.command()
def handle(
    review_id: Annotated[int, typer.Argument(help="the review's id (repwatch reviews shows it)")],
    note: Annotated[str | None, typer.Option("--note", help="what was done, e.g. 'called the customer, refunded'")] = None,
    actor: ActorOption = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Mark a review handled (the same as `repwatch resolve`): no reminder, its Slack alert updated."""
    from monitor.service.reviews import NoSuchReview
    from monitor.service.reviews import handle as handle_review

    loaded = open_config(config)
    try:
        outcome, report = handle_review(loaded, review_id, note=note, actor=_actor(actor))
    except NoSuchReview as exc:
        fail(str(exc))
    out.print(Text(f"review #{outcome.review_id} marked handled" + (f" ({terminal_safe(note, 200)})" if note else "")))
    for problem in report.problems if report else []:
        err.print(Text(f"repwatch: alerts: {terminal_safe(problem)}"))
    if report and report.problems:
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
    from monitor.service.reviews import NoSuchReview, review_history

    try:
        found = review_history(open_config(config), review_id)
    except NoSuchReview as exc:
        fail(str(exc))
    records, url, removed_at = found.versions, found.url, found.removed_at
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
    show(table)


# --- digest ---------------------------------------------------------------------------------------


@app.command()
def digest(
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
    week: Annotated[str | None, typer.Option("--week", help="ISO week, e.g. 2026-W47; default: the last complete week (UTC)")] = None,
    business: Annotated[str | None, typer.Option("--business", "-b", help="only this business")] = None,
    preview: Annotated[Path | None, typer.Option("--preview", help="write the HTML to this file (chart inline) to open in a browser")] = None,
    send: Annotated[bool, typer.Option("--send", help="email it to digest.to through digest.smtp, once per business and week")] = False,
    force: Annotated[bool, typer.Option("--force", help="with --send: send it again even if that week's digest went out")] = False,
) -> None:
    """The weekly digest per business: new reviews, ratings, sentiment, negative and unanswered reviews, a chart.

    Without --send or --preview it prints the plain-text version. --send sends each business's digest of a week
    once: a second run says it went out already (--force sends it again).
    """
    from alerts.base import DeliveryError
    from alerts.digest import render_text
    from monitor.config import ConfigError
    from monitor.service.digest import (
        business_names,
        digests_for_week,
        preview_html,
        send_digest,
        week_of,
    )

    if send and preview:
        fail("use --send or --preview, not both")
    if force and not send:
        fail("--force goes with --send")
    try:
        chosen = week_of(week)
    except ValueError as exc:
        fail(f"--week: {exc}")
    loaded = open_config(config)
    try:
        names = business_names(loaded, business)
    except ConfigError as exc:
        fail(exc.problems[0])
    if not names:
        fail(f"{config} lists no businesses")
    if send and loaded.digest is None:
        fail(f"{config} has no digest: section (SMTP server and recipients); see `repwatch init`")
    digests = digests_for_week(loaded, chosen, names)
    failed = False
    for index, item in enumerate(digests):
        if preview is not None:
            path = preview if len(digests) == 1 else preview.with_name(f"{preview.stem}-{index + 1}{preview.suffix or '.html'}")
            try:
                path.write_text(preview_html(item), encoding="utf-8")
            except OSError as exc:
                fail(f"cannot write {path}: {exc.strerror}")
            out.print(Text(f"{path.resolve()}" + (f"  ({item.business})" if len(digests) > 1 else "")))
        elif send:
            try:
                sent = send_digest(loaded, item, force=force)
            except DeliveryError as exc:
                failed = True
                later = " (temporary: try again later)" if exc.retryable else ""
                err.print(Text(f"repwatch: digest for {item.business} not sent: {exc}{later}"))
                continue
            report = sent.report
            if report is None:
                out.print(Text(f"{item.business}: the {item.week.label} digest went out on {format_when(sent.earlier_at)} "
                               f"to {sent.earlier_to}; not sent again (--force sends it again)"))
                continue
            again = f" again (first sent {format_when(sent.earlier_at)})" if sent.earlier_at else ""
            out.print(Text(f"{item.business}: sent the {item.week.label} digest to {', '.join(report.accepted)}{again}"))
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
    table.add_column("verified on", overflow="fold")
    for name, spider in sorted(load_spiders().items()):
        doc = help_text(spider.__doc__)
        verified = spider.verified_on or "no real page verified it yet"
        # Text: `div.review[data-id]` is not markup
        table.add_row(name, spider.site_name or name, Text(doc), Text(verified))
    show(table)


def help_text(docstring: str | None) -> str:
    """A docstring for a table cell: prose paragraphs reflowed, indented blocks (config examples) kept as written."""
    paragraphs = inspect.cleandoc(docstring or "").split("\n\n")
    return "\n\n".join(p if p.startswith(" ") else " ".join(p.split()) for p in paragraphs)


@sources_app.command("health")
def sources_health(config: ConfigOption = Path(DEFAULT_CONFIG_NAME)) -> None:
    """State of every configured source: new (never crawled), ok, failing, blocked, broken or empty (pages read, no reviews)."""
    from monitor.service.pipeline import open_sessions
    from monitor.service.status import source_health

    loaded = open_config(config)
    table = Table(title="sources", title_justify="left")
    for column in ("source", "kind", "state", "last success", "failures", "last error", "last run's notes"):
        table.add_column(column)
    colours = {"ok": "green", "new": "yellow"}
    for s in source_health(loaded, open_sessions(loaded)):
        table.add_row(
            s.name,
            s.kind,
            Text(s.state, style=colours.get(s.state, "red")),
            format_when(s.last_success_at, zone=False) or "never",
            str(s.consecutive_failures),
            Text(terminal_safe(s.last_error, 120)),
            Text("; ".join(s.notes)),
        )
    show(table)


@alerts_app.command("test")
def alerts_test(
    kind: Annotated[str, typer.Argument(help="notifier kind: slack, teams, discord, webhook or email")],
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Send a sample alert through each configured notifier of this kind and say what happened.

    `email` with no email notifier configured sends a short test email to digest.to through digest.smtp instead.
    """
    from alerts.base import DeliveryError
    from monitor.service.alerting import send_tests

    loaded = open_config(config)
    outcomes = send_tests(loaded, kind)
    if not outcomes and kind == "email":
        alerts_test_digest_email(loaded, config)
        return
    if not outcomes:
        fail(f"no notifier of kind {kind!r} in {config}")
    failed = False
    for name, outcome in outcomes:
        if isinstance(outcome, DeliveryError):
            failed = True
            # A test is sent once: nothing retries it, whatever the delivery error says about the outbox.
            text = str(outcome).removesuffix(", will retry")
            err.print(Text(f"{name}: FAILED: {text}" + (" (temporary: try again later)" if outcome.retryable else "")))
        else:
            channel = getattr(loaded.notifiers[name], "channel", None)
            out.print(Text(f"{name}: sent" + (f" to {channel}" if channel else "")))
    if failed:
        raise typer.Exit(EXIT_FAILURE)


def alerts_test_digest_email(loaded: Config, config: Path) -> None:
    """A short test email through the digest's SMTP settings; exit 1 with one line if nobody got it."""
    from alerts.base import DeliveryError
    from monitor.service.alerting import send_digest_test

    settings = loaded.digest
    if settings is None:
        fail(f"{config} has no digest: section (SMTP server and recipients); see `repwatch init`")
    try:
        report = send_digest_test(loaded)
    except DeliveryError as exc:
        fail(f"test email not sent: {exc}" + (" (temporary: try again later)" if exc.retryable else ""))
    where = f"{settings.smtp.host}:{settings.smtp.effective_port()}"
    out.print(Text(f"email: sent a test email to {', '.join(report.accepted)} via SMTP {where}"))
    if report.refused:
        fail("test email refused for " + "; ".join(f"{rcpt}: {reply}" for rcpt, reply in report.refused.items()))


# --- the team's work on complaints (the same service functions as the web inbox and the Slack buttons) ------

users_app = typer.Typer(help="The team: who may log in to the inbox and act from Slack.", no_args_is_help=True)
app.add_typer(users_app, name="users")

ActorOption = Annotated[
    str | None,
    typer.Option("--as", envvar="REPWATCH_USER", help="who acts, for the audit trail [default: your login name]"),
]
SeenOption = Annotated[
    int | None,
    typer.Option("--seen-version", help="the work_version you decided on (`repwatch trail`): a later change is reported"),
]


def _work(config: Path, action: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a work action on the config's database; one line and exit 1 for what cannot be done."""
    from monitor.service.pipeline import open_sessions
    from monitor.service.work import NoSuchReview, WorkError

    loaded = open_config(config)
    sessions = open_sessions(loaded)
    try:
        return loaded, sessions, action(sessions, *args, **kwargs)
    except (NoSuchReview, WorkError) as exc:
        fail(str(exc))


def _said(outcome: Any, what: str) -> None:
    posts = len(outcome.reviews)
    also = f" (with the {posts - 1} other post{'s' if posts > 2 else ''} of its incident)" if posts > 1 else ""
    if not outcome.changed:
        out.print(Text(f"review #{outcome.review_id} was already {what}: nothing changed"))
        return
    out.print(Text(f"review #{outcome.review_id} {what}{also}"))
    if outcome.stale:
        err.print(Text(f"repwatch: note: review #{outcome.review_id} had changed since the version you saw; "
                       f"see `repwatch trail {outcome.review_id}`"))


def _send_updates(loaded: Config, sessions: Any, outcome: Any) -> None:
    if not outcome.updates_queued:
        return
    from monitor.service.pipeline import send_due

    report = send_due(loaded, sessions)
    for problem in report.problems:
        err.print(Text(f"repwatch: alerts: {terminal_safe(problem)}"))
    if report.problems:
        raise typer.Exit(EXIT_FAILURE)


def _actor(name: str | None) -> Any:
    from monitor.service.work import Actor

    return Actor.from_cli(name)


@app.command()
def assign(
    review_id: Annotated[int, typer.Argument(help="the review's id (repwatch reviews shows it)")],
    to: Annotated[str | None, typer.Option("--to", help="a user's name (repwatch users list) [default: you]")] = None,
    nobody: Annotated[bool, typer.Option("--nobody", help="take it back: assigned to nobody")] = False,
    actor: ActorOption = None,
    seen: SeenOption = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Give a review (and the other posts of its incident) to somebody of the team; a new one becomes `assigned`."""
    from monitor.service.work import assign as assign_review

    who = _actor(actor)
    loaded, sessions, outcome = _work(config, assign_review, review_id, who, to="" if nobody else (to or who.name),
                                      check_user=True, seen_version=seen)
    _said(outcome, f"assigned to {outcome.assignee}" if outcome.assignee else "assigned to nobody")
    _send_updates(loaded, sessions, outcome)  # the Slack alert shows who has it


@app.command()
def mark(
    review_id: Annotated[int, typer.Argument(help="the review's id")],
    status: Annotated[str, typer.Argument(help="new, assigned, replied, resolved or not_complaint")],
    note: Annotated[str | None, typer.Option("--note", help="what was done")] = None,
    actor: ActorOption = None,
    seen: SeenOption = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Move a review (and its incident) along: new → assigned → replied → resolved, or not_complaint (which records
    your label for `repwatch train`). replied, resolved and not_complaint stop the reminder and settle its alerts."""
    from monitor.service.work import set_status

    wanted = status.strip().lower().replace("-", "_").replace(" ", "_")
    loaded, sessions, outcome = _work(config, set_status, review_id, wanted, _actor(actor), note=note,
                                      seen_version=seen)
    _said(outcome, f"marked {wanted.replace('_', ' ')}")
    _send_updates(loaded, sessions, outcome)


@app.command()
def resolve(
    review_id: Annotated[int, typer.Argument(help="the review's id")],
    note: Annotated[str | None, typer.Option("--note", help="what was done, e.g. 'called the customer, refunded'")] = None,
    actor: ActorOption = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Mark a review (and its incident) resolved: `repwatch mark ID resolved`."""
    from monitor.service.work import set_status

    loaded, sessions, outcome = _work(config, set_status, review_id, "resolved", _actor(actor), note=note)
    _said(outcome, "marked resolved")
    _send_updates(loaded, sessions, outcome)


@app.command()
def note(
    review_id: Annotated[int, typer.Argument(help="the review's id")],
    text: Annotated[str, typer.Argument(help="the note (internal: never shown outside the team)")],
    actor: ActorOption = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Add an internal note to a review's trail."""
    from monitor.service.work import add_note

    _, _, outcome = _work(config, add_note, review_id, text, _actor(actor))
    out.print(Text(f"note added to review #{outcome.review_id}"))


@app.command()
def snooze(
    review_id: Annotated[int, typer.Argument(help="the review's id")],
    duration: Annotated[str, typer.Argument(help="how long the reply reminder waits, e.g. 1d or 4h")] = "1d",
    actor: ActorOption = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Let the reply reminder of a review wait (at most 30d); it comes when the snooze ends if still unanswered."""
    from monitor.service.work import snooze as snooze_review

    try:
        wait = parse_duration(duration)
    except ValueError as exc:
        fail(f"snooze: {exc}")
    loaded, sessions, outcome = _work(config, snooze_review, review_id, wait, _actor(actor))
    out.print(Text(f"review #{outcome.review_id}: the reminder waits {duration.strip()}"))
    _send_updates(loaded, sessions, outcome)


@app.command()
def draft(
    review_id: Annotated[int, typer.Argument(help="the review's id")],
    text_file: Annotated[Path | None, typer.Option("--text-file", help="save this file's text as the team's draft ('-': stdin)")] = None,
    actor: ActorOption = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Print a review's draft reply (the team's edit, else the generated one), or save an edited one. repwatch never
    posts it on the review site by itself."""
    from monitor.service.work import save_draft

    if text_file is None:
        from monitor.service.reviews import NoSuchReview, draft_reply

        try:
            sys.stdout.write(terminal_safe(draft_reply(open_config(config), review_id), 8000) + "\n")
        except NoSuchReview as exc:
            fail(str(exc))
        return
    try:
        text = sys.stdin.read() if str(text_file) == "-" else text_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{text_file}: cannot read it ({exc.__class__.__name__})")
    loaded, sessions, outcome = _work(config, save_draft, review_id, text, _actor(actor))
    out.print(Text(f"draft of review #{outcome.review_id} " + ("saved" if outcome.changed else "unchanged")))
    _send_updates(loaded, sessions, outcome)


@app.command()
def trail(
    review_id: Annotated[int, typer.Argument(help="the review's id")],
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """A review's audit trail: who did what, when, from where (cli, web, slack, crawl)."""
    from monitor.service.work import review_events

    if output not in ("table", "json"):
        fail(f"--format must be table or json, not {output!r}")
    _, _, events = _work(config, review_events, review_id)
    if output == "json":
        for event in events:
            sys.stdout.write(json.dumps({"at": event.at.isoformat(), "actor": event.actor, "via": event.via,
                                         "action": event.action, "before": event.before, "after": event.after,
                                         "stale": event.stale}, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"review #{review_id}: its trail", title_justify="left")
    for column in ("when (UTC)", "who", "via", "what"):
        table.add_column(column, overflow="fold")
    for event in events:
        what = f"{event.action}: " + (f"{event.before} → {event.after}" if event.before else f"{event.after}")
        table.add_row(format_when(event.at), Text(terminal_safe(event.actor, 100)), event.via,
                      Text(terminal_safe(what + (" (on a stale view)" if event.stale else ""), 400)))
    if not events:
        out.print(Text(f"review #{review_id}: nobody has acted on it yet"))
        return
    show(table)


def _password(password_file: Path | None, *, confirm: bool = True) -> str:
    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"{password_file}: cannot read it ({exc.__class__.__name__})")
    if not sys.stdin.isatty():
        fail("no terminal to ask for the password: give --password-file FILE")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=confirm))


def _team(config: Path, action: Any, *args: Any) -> Any:
    from monitor.service.pipeline import open_sessions
    from monitor.service.users import UserError

    try:
        return action(open_sessions(open_config(config)), *args)
    except UserError as exc:
        fail(str(exc))


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="their login name")],
    role: Annotated[str, typer.Option("--role", help="owner (manages the team) or member (works reviews)")] = "member",
    password_file: Annotated[Path | None, typer.Option("--password-file", help="read the password from this file instead of asking")] = None,
    no_password: Annotated[bool, typer.Option("--no-password", help="no web login (acts from Slack only)")] = False,
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Add a person to the team (the password is hashed with argon2; at least 10 characters)."""
    from monitor.service.users import add_user

    secret = None if no_password else _password(password_file)
    person = _team(config, add_user, name, role.strip().lower(), secret)
    out.print(Text(f"user {person.name} added ({person.role})"))


@users_app.command("list")
def users_list(
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """The team: names, roles, Slack links."""
    from monitor.service.users import list_users

    people = _team(config, list_users)
    if output == "json":
        for p in people:
            sys.stdout.write(json.dumps({"name": p.name, "role": p.role, "slack_user_id": p.slack_user_id,
                                         "web_login": p.can_log_in, "created_at": p.created_at.isoformat()}) + "\n")
        return
    table = Table(title=f"users ({len(people)})", title_justify="left")
    for column in ("name", "role", "web login", "Slack member id", "since"):
        table.add_column(column, overflow="fold")
    for p in people:
        table.add_row(p.name, p.role, "yes" if p.can_log_in else "no", p.slack_user_id or "", format_when(p.created_at))
    if not people:
        out.print(Text("nobody yet: `repwatch users add NAME --role owner`"))
        return
    show(table)


@users_app.command("remove")
def users_remove(name: Annotated[str, typer.Argument()], config: ConfigOption = Path(DEFAULT_CONFIG_NAME)) -> None:
    """Remove a person: their sessions end; the trail keeps their name on what they did."""
    from monitor.service.users import remove_user

    person = _team(config, remove_user, name)
    out.print(Text(f"user {person.name} removed"))


@users_app.command("reset-password")
def users_reset_password(
    name: Annotated[str, typer.Argument()],
    password_file: Annotated[Path | None, typer.Option("--password-file", help="read the password from this file instead of asking")] = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Set a new password; every session the person had ends."""
    from monitor.service.users import reset_password

    person = _team(config, reset_password, name, _password(password_file))
    out.print(Text(f"password of {person.name} changed; their sessions ended"))


@users_app.command("link")
def users_link(
    name: Annotated[str, typer.Argument()],
    slack_user_id: Annotated[str | None, typer.Argument(help="their Slack member id (profile → ⋮ → Copy member ID)")] = None,
    unlink: Annotated[bool, typer.Option("--unlink", help="forget their Slack member id")] = False,
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Map a Slack member to a person: their clicks on alert buttons act as them."""
    from monitor.service.users import link_slack

    if not unlink and not slack_user_id:
        fail("give the Slack member id (like U0123ABCD), or --unlink")
    person = _team(config, link_slack, name, None if unlink else slack_user_id)
    out.print(Text(f"{person.name} " + (f"linked to Slack member {person.slack_user_id}" if person.slack_user_id
                                        else "no longer linked to Slack")))


# --- incidents: one complaint posted on several sites ------------------------------------------------


def incident_record(found: Any) -> dict[str, Any]:
    """An incident as JSON: its posts first published first, each with its site, author and status."""
    return {
        "id": found.id, "business": found.business, "first_review_id": found.first_review_id,
        "created_at": found.created_at.isoformat(), "open": found.open, "sites": list(found.sites),
        "reason": found.reason.splitlines(),
        "posts": [{"review_id": p.review_id, "site": p.site, "source": p.source, "author": p.author,
                   "rating": p.rating, "status": p.status, "assignee": p.assignee,
                   "published_at": p.published_at.isoformat() if p.published_at else None, "url": p.url}
                  for p in found.posts],
    }


def incident_posts_table(found: Any, *, text: bool) -> Table:
    table = Table(title=Text(terminal_safe(f"incident #{found.id} · {found.business} · "
                                           f"{len(found.posts)} posts on {', '.join(found.sites)}")),
                  title_justify="left")
    for column in ("review", "site", "author", "★", "published", "status", "assignee"):
        table.add_column(column, overflow="fold")
    if text:
        table.add_column("text", overflow="fold", max_width=60)
    for p in found.posts:
        row = [str(p.review_id) + (" (first)" if p.review_id == found.first_review_id else ""),
               Text(terminal_safe(p.site, 60)), Text(terminal_safe(p.author or "", 60)),
               "" if p.rating is None else f"{p.rating:g}", format_when(p.published_at) or "—", p.status,
               Text(terminal_safe(p.assignee or "", 60))]
        if text:
            row.append(Text(terminal_safe(f"{p.title}: {p.body}" if p.title else p.body, 200)))
        table.add_row(*row)
    return table


@app.command("incidents")
def incidents(
    action: Annotated[str | None, typer.Argument(help="show: one incident, with its posts' text")] = None,
    incident_id: Annotated[int | None, typer.Argument(help="the incident's id, with show")] = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    business: Annotated[str | None, typer.Option("--business", help="one business's incidents")] = None,
    everything: Annotated[bool, typer.Option("--all", help="settled incidents too")] = False,
) -> None:
    """Open incidents (a post still new or assigned), newest first, with their posts; `incidents show ID`: one."""
    from monitor.service.incidents import NoSuchIncident, incident, open_incidents
    from monitor.service.pipeline import open_sessions

    if output not in ("table", "json"):
        fail(f"--format must be table or json, not {output!r}")
    if action is not None and (action != "show" or incident_id is None):
        fail("write `repwatch incidents` for the list, or `repwatch incidents show ID` for one")
    sessions = open_sessions(open_config(config))
    if incident_id is not None:
        try:
            found = incident(sessions, incident_id)
        except NoSuchIncident as exc:
            fail(str(exc))
        if output == "json":
            sys.stdout.write(json.dumps(incident_record(found), ensure_ascii=False) + "\n")
            return
        out.print(incident_posts_table(found, text=True))
        for line in found.reason.splitlines():
            out.print(Text(terminal_safe(f"linked: {line}", 300)))
        return
    listed = open_incidents(sessions, business=business, include_settled=everything)
    if output == "json":
        for item in listed:
            sys.stdout.write(json.dumps(incident_record(item), ensure_ascii=False) + "\n")
        return
    if not listed:
        out.print("no open incidents" if not everything else "no incidents")
        return
    for item in listed:
        out.print(incident_posts_table(item, text=False))


@app.command("link")
def link_command(
    review_id: Annotated[int, typer.Argument(help="the review to link")],
    to: Annotated[int, typer.Option("--to", help="the review it is the same complaint as")],
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
    actor: ActorOption = None,
) -> None:
    """Say two reviews of one business are the same complaint: the first joins the second's incident."""
    from monitor.service.incidents import link
    from monitor.service.pipeline import open_sessions
    from monitor.service.work import Actor, NoSuchReview, WorkError

    try:
        incident_id = link(open_sessions(open_config(config)), review_id, to, Actor.from_cli(actor))
    except (NoSuchReview, WorkError) as exc:
        fail(str(exc))
    out.print(f"review #{review_id} is in incident #{incident_id} with review #{to}")


@app.command("unlink")
def unlink_command(
    review_id: Annotated[int, typer.Argument(help="the review to take out of its incident")],
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
    actor: ActorOption = None,
) -> None:
    """Say a review is a complaint of its own: it leaves its incident, and the linker will not link it again."""
    from monitor.service.incidents import unlink
    from monitor.service.pipeline import open_sessions
    from monitor.service.work import Actor, NoSuchReview, WorkError

    try:
        left = unlink(open_sessions(open_config(config)), review_id, Actor.from_cli(actor))
    except (NoSuchReview, WorkError) as exc:
        fail(str(exc))
    out.print(f"review #{review_id} left incident #{left}")

# --- slack actions ----------------------------------------------------------------------------------


@app.command("slack-listen")
def slack_listen(config: ConfigOption = Path(DEFAULT_CONFIG_NAME)) -> None:
    """Answer the work buttons of Slack alerts over Socket Mode (no public URL), until SIGTERM.

    Needs a slack_actions: section with app_token (xapp-…); `repwatch run` starts it by itself when that is set.
    Reconnects on its own. Exit 0 after SIGTERM/SIGINT, 1 when Slack refuses the app token.
    """
    loaded = open_config(config)
    if loaded.slack_actions is None or loaded.slack_actions.app_token is None:
        fail(f"{config} has no slack_actions.app_token (xapp-…); see docs/slack-actions.md")
    from monitor.listener import serve

    raise typer.Exit(serve(loaded))

# --- Google Business Profile: auth google / reply -------------------------------------------------


auth_app = typer.Typer(help="Authorise repwatch with a site's API (once per account).", no_args_is_help=True)
app.add_typer(auth_app, name="auth")


@auth_app.command("google")
def auth_google(
    source: Annotated[str | None, typer.Option("--source", help="the google_business source (default: the first)")] = None,
    port: Annotated[int, typer.Option("--port", help="port of the local redirect server on 127.0.0.1 (0: any free)")] = 0,
    wait: Annotated[int, typer.Option("--timeout", help="seconds to wait for Google's answer")] = 300,
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Let repwatch read and answer the owner's Google reviews: open the printed URL, agree, and the refresh token is
    stored 0600 under data_dir (google-oauth.json). The client id and secret are the source's options."""
    from monitor.service.google import GoogleError, authorise

    loaded = open_config(config)

    def show(url: str) -> None:
        err.print(Text("Open this URL in a browser signed in as the Business Profile's owner, and agree:"))
        err.print(Text(url))
        err.print(Text("Waiting for Google to send the browser back to repwatch on 127.0.0.1 ..."))

    try:
        done = authorise(loaded, source, show=show, port=port, timeout=wait)
    except GoogleError as exc:
        fail(str(exc))
    out.print(Text(f"authorised: source {done.source} can now be crawled and answered "
                   f"(refresh token stored in {done.token_file}, readable by you only)"))


@app.command()
def reply(
    review_id: Annotated[int, typer.Argument(help="the review's id (repwatch reviews shows it)")],
    text_file: Annotated[Path, typer.Option("--text-file", help="the reply, UTF-8 text ('-': standard input)")],
    yes: Annotated[bool, typer.Option("--yes", help="post without asking first")] = False,
    actor: ActorOption = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
) -> None:
    """Post the owner's reply to a Google review (google_business sources) after a confirmation; other sites are
    answered on the site itself. Nothing is posted without this command. The review becomes `replied`."""
    from monitor.service.google import (
        CannotPost,
        GoogleError,
        check_reply_text,
        reply_and_record,
        reply_target,
    )
    from monitor.service.reviews import NoSuchReview

    loaded = open_config(config)
    try:
        target = reply_target(loaded, review_id)
    except NoSuchReview as exc:
        fail(str(exc))
    except CannotPost as exc:  # "repwatch cannot post on SITE; answer at URL"
        err.print(Text(terminal_safe(str(exc), 500)))
        raise typer.Exit(EXIT_FAILURE) from None
    try:
        raw = sys.stdin.read() if str(text_file) == "-" else text_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {text_file}: {getattr(exc, 'strerror', None) or exc}")
    try:
        text = check_reply_text(raw)
    except GoogleError as exc:
        fail(str(exc))
    if not yes:
        stars = "" if target.rating is None else f" {target.rating:g}★"
        err.print(Text(f"review #{target.review_id} on {target.source}{stars} by {terminal_safe(target.author or '?', 80)}: "
                       f"{terminal_safe(target.body, 300)}"))
        if target.current_reply:
            err.print(Text(f"it replaces the reply: {terminal_safe(target.current_reply, 300)}"))
        err.print(Text(f"reply: {terminal_safe(text, 2000)}"))
        if not typer.confirm("Post this reply on Google?", default=False, err=True):
            fail("not posted")
    try:
        recorded = reply_and_record(loaded, review_id, text, _actor(actor))
    except GoogleError as exc:
        fail(str(exc))
    posted = recorded.posted
    out.print(Text(f"reply posted on Google to review #{posted.review_id}"
                   + (f" at {posted.update_time}" if posted.update_time else "")
                   + "; the review is marked replied"))


# --- the team inbox ---------------------------------------------------------------------------------------------


def _day_option(value: str | None, option: str) -> Any:
    if value is None:
        return None
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: expected a date like 2026-11-20, got {value!r}")


def _hours(delta: timedelta | None) -> float | None:
    return None if delta is None else round(delta.total_seconds() / 3600, 1)


def _span(delta: timedelta) -> str:
    hours = abs(delta.total_seconds()) / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} d"


@app.command()
def inbox(
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
    business: Annotated[str | None, typer.Option("--business", "-b", help="a business's name")] = None,
    source: Annotated[str | None, typer.Option("--source", "-s", help="a source's name")] = None,
    site: Annotated[str | None, typer.Option("--site", help="a source kind, e.g. trustpilot")] = None,
    stars: Annotated[list[int] | None, typer.Option("--stars", help="1-5 (0: no rating); repeat for several")] = None,
    label: Annotated[str | None, typer.Option("--label", help="neg, mixed, neu, pos, unscored or any (default: neg and mixed)")] = None,
    severity: Annotated[str | None, typer.Option("--severity", help="normal, high or critical")] = None,
    language: Annotated[str | None, typer.Option("--language", "--lang", help="e.g. en, pl")] = None,
    topic: Annotated[str | None, typer.Option("--topic", help="a complaint topic, e.g. delivery")] = None,
    status: Annotated[list[str] | None, typer.Option("--status", help="new, assigned, replied, resolved, not_complaint or any; repeat for several (default: new and assigned)")] = None,
    assignee: Annotated[str | None, typer.Option("--assignee", help="a person's name")] = None,
    unassigned: Annotated[bool, typer.Option("--unassigned", help="only reviews nobody has taken")] = False,
    published_from: Annotated[str | None, typer.Option("--published-from", help="YYYY-MM-DD (UTC)")] = None,
    published_to: Annotated[str | None, typer.Option("--published-to", help="YYYY-MM-DD, included")] = None,
    seen_from: Annotated[str | None, typer.Option("--seen-from", help="first seen on or after, YYYY-MM-DD")] = None,
    seen_to: Annotated[str | None, typer.Option("--seen-to", help="first seen on or before, YYYY-MM-DD")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="words in the title, text or author (all of them)")] = None,
    include_baseline: Annotated[bool, typer.Option("--include-baseline", help="also the history a source's first crawl stored")] = False,
    order: Annotated[str, typer.Option("--order", help="oldest, newest or waited")] = "oldest",
    page: Annotated[int, typer.Option("--page", min=1)] = 1,
    per_page: Annotated[int, typer.Option("--per-page", min=1, max=200)] = 50,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """The team inbox: complaints still waiting for a reply (new or assigned), oldest first, with how long each has
    waited against alerting.reply_deadline; the options filter it as the web inbox does."""
    from monitor.service.inbox import InboxError, InboxQuery
    from monitor.service.inbox import inbox as inbox_page
    from monitor.service.pipeline import open_sessions

    if output not in ("table", "json"):
        fail(f"--format must be table or json, not {output!r}")
    if unassigned and assignee is not None:
        fail("--assignee and --unassigned: choose one")
    statuses = tuple(status or ())
    query = InboxQuery(
        business=business, source=source, site=site, stars=tuple(stars or ()), label=label, severity=severity,
        language=language, topic=topic,
        status=() if "any" in statuses else statuses or InboxQuery().status,
        assignee="" if unassigned else assignee,
        published_from=_day_option(published_from, "--published-from"),
        published_to=_day_option(published_to, "--published-to"),
        seen_from=_day_option(seen_from, "--seen-from"), seen_to=_day_option(seen_to, "--seen-to"),
        text=search, include_baseline=include_baseline, page=page, per_page=per_page, order=order,
    )
    loaded = open_config(config)
    try:
        result = inbox_page(open_sessions(loaded), loaded, query)
    except InboxError as exc:
        fail(str(exc))
    if output == "json":
        rows = [{
            "id": r.id, "business": r.business, "source": r.source, "site": r.site, "kind": r.kind, "stars": r.stars,
            "author": r.author, "excerpt": r.excerpt, "language": r.language, "topics": list(r.topics),
            "label": r.label, "severity": r.severity, "waited_hours": _hours(r.waited),
            "deadline_hours": _hours(r.deadline), "overdue": r.overdue, "assignee": r.assignee, "status": r.status,
            "incident_id": r.incident_id, "incident_posts": r.incident_posts, "url": r.url,
            "published_at": r.published_at.isoformat() if r.published_at else None,
            "first_seen_at": r.first_seen_at.isoformat(), "removed": r.removed, "work_version": r.work_version,
        } for r in result.rows]
        sys.stdout.write(json.dumps({"total": result.total, "page": result.page, "pages": result.pages,
                                     "per_page": result.per_page, "counts": result.counts, "rows": rows},
                                    ensure_ascii=False) + "\n")
        return
    table = Table(title=f"inbox: {result.total} review{'s' if result.total != 1 else ''}"
                  + (f", page {result.page} of {result.pages}" if result.pages > 1 else ""),
                  title_justify="left", expand=False)
    for name, justify in (("id", "right"), ("site", "left"), ("★", "right"), ("author", "left"), ("lang", "left"),
                          ("topics", "left"), ("waited", "right"), ("assignee", "left"), ("review", "left")):
        table.add_column(name, justify=justify, overflow="fold", max_width=60 if name == "review" else 24)  # type: ignore[arg-type]
    for r in result.rows:
        waited = Text(_span(r.waited), style="red" if r.overdue else "")
        if r.overdue and r.deadline is not None:
            waited.append(f" (+{_span(r.deadline)})", style="red")
        table.add_row(
            str(r.id) + (f" ×{r.incident_posts}" if r.incident_posts > 1 else ""), Text(terminal_safe(r.site, 40)),
            "" if r.stars is None else f"{r.stars:g}", Text(terminal_safe(r.author, 40)), r.language or "",
            Text(", ".join(r.topics)), waited, Text(terminal_safe(r.assignee or "", 40)),
            Text(terminal_safe(" ".join(r.excerpt.split()), 160)),
        )
    show(table)
    if result.total:
        out.print("Take one: `repwatch assign ID --to NAME`; settle it: `repwatch mark ID replied|resolved`.")


# --- web: the team inbox -----------------------------------------------------------------------------


@app.command()
def web(
    config: ConfigOption = Path(DEFAULT_CONFIG_NAME),
    host: Annotated[str | None, typer.Option("--host", help="address to listen on (default: web.host, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="TCP port (default: web.port, 8080)")] = None,
) -> None:
    """Serve the team inbox (the web pages to work complaints), until SIGINT/SIGTERM.

    People log in with the passwords `repwatch users add` gave them. It uses the database the rest of repwatch uses
    and runs next to `repwatch run` (or inside it: web.start_with_run). Behind a reverse proxy for a team, list the
    proxy in web.trusted_proxies (docs/inbox.md).
    """
    loaded = open_config(config)
    from monitor.service.users import list_users
    from monitor.web.server import WebServer

    try:
        server = WebServer(loaded, host=host, port=port)
    except OSError as exc:
        fail(f"cannot listen on {host or loaded.web.host}:{loaded.web.port if port is None else port}: {exc.strerror or exc}")
    # Said on stderr, like the daemon's log lines: stdout stays empty for whoever pipes it.
    err.print(Text(f"repwatch web: the inbox is at {server.url}/ (Ctrl-C stops it)"))
    if not any(person.can_log_in for person in list_users(server.sessions)):
        err.print(Text("repwatch web: nobody can log in yet: `repwatch users add NAME --role owner` gives the first "
                       "person a password"))
    server.serve_until_signal()


def main(argv: list[str] | None = None) -> None:
    """Console entry point (argv: sys.argv[1:] when None): one line on stderr for anything unexpected, a traceback
    only with REPWATCH_DEBUG=1. Always ends in SystemExit with the exit code."""
    if not out.is_terminal:
        out.width = UNBOUNDED_WIDTH  # cron's log or a pipe: no line cut or wrapped to a terminal's 80 columns
    try:
        app(args=argv, prog_name="repwatch")
    except KeyboardInterrupt:
        err.print("repwatch: interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence for a one-line error
        if os.environ.get("REPWATCH_DEBUG"):
            raise
        from monitor.service.errors import describe_error

        err.print(Text(f"repwatch: {describe_error(exc)}"))
        sys.exit(EXIT_FAILURE)
