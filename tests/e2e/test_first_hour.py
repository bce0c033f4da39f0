"""An owner's first hour (issue 16): what a new user meets around the demo, each finding pinned through the CLI."""
from __future__ import annotations

import re
from pathlib import Path

from tests.cli import run_cli
from tests.e2e.conftest import DOMAIN, site_review, write_config


def with_source_lines(config: Path, *lines: str) -> None:
    """Add keys to the one source of a write_config config (after its `url:` line)."""
    text = config.read_text()
    url_line = next(line for line in text.splitlines() if line.strip().startswith("url:"))
    indent = url_line[: len(url_line) - len(url_line.lstrip())]
    config.write_text(text.replace(url_line, url_line + "".join(f"\n{indent}{line}" for line in lines)))


# --- 1. a wrong kind or URL watches nothing, and says so ------------------------------------------------


def test_a_source_whose_pages_give_no_reviews_is_empty_with_a_hint_on_every_crawl(e2e):
    e2e.publish([site_review(n, 5, 10 + n) for n in range(5)])
    url = f"{e2e.site.url}/review/{DOMAIN}"
    write_config(e2e.tmp, e2e.site.url, e2e.slack.api_url, source=("acme-yelp", "yelp", url))  # a Trustpilot page
    for _ in range(2):
        result = e2e.crawl()
        assert result.code == 1, result.stdout
        assert "empty" in result.stdout
        [line] = [line for line in result.stderr.splitlines() if line.startswith("repwatch: source acme-yelp")]
        assert "no reviews read" in line and f"check the kind; try `repwatch extract {url} --spider auto`" in line
    health = e2e.repwatch("sources", "health")
    assert "acme-yelp" in health.stdout and " empty " in health.stdout, health.stdout
    assert "check the kind" in health.stdout


def test_a_source_allowed_to_be_empty_crawls_ok_with_no_reviews(e2e):
    e2e.site.set_page(f"/review/{DOMAIN}", "<html><body><p>No reviews yet.</p></body></html>")
    with_source_lines(e2e.config, "allow_empty: true")
    result = e2e.crawl()
    assert result.code == 0, result.stderr
    assert " ok " in result.stdout


def test_config_check_names_the_kind_that_fits_a_url_on_another_site(tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9/api/",
                          source=("acme", "trustpilot", "https://www.yelp.com/biz/acme-coffee"))
    result = run_cli("config", "check", "--config", str(config), env={"SLACK_BOT_TOKEN": "xoxb-1"})
    assert result.code == 0, result.stderr
    [line] = [line for line in result.stderr.splitlines() if "www.yelp.com" in line]
    assert "is not a Trustpilot site" in line and "kind: yelp fits it" in line


def test_extract_with_a_spider_that_reads_nothing_says_so_and_fails(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><head><title>Acme</title></head><body><p>Hello</p></body></html>")
    result = run_cli("extract", str(page), "--spider", "trustpilot", "--url", "https://www.consumeraffairs.com/x.html")
    assert result.code == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "--spider trustpilot reading found no reviews" in line and "--spider auto" in line


# --- 2. site URLs asked for every review, newest first ---------------------------------------------------


def test_config_check_says_once_how_a_trustpilot_and_a_yelp_url_are_crawled(tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9/api/",
                          source=("acme", "trustpilot", "https://www.trustpilot.com/review/acme.example"))
    text = config.read_text().replace("      - name: acme\n", "      - name: acme-yelp\n"
                                      "        kind: yelp\n        url: https://www.yelp.com/biz/acme?osq=coffee\n"
                                      "      - name: acme\n")
    config.write_text(text)
    result = run_cli("config", "check", "--config", str(config), env={"SLACK_BOT_TOKEN": "xoxb-1"})
    assert result.code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "crawled as" in line]
    assert len(notes) == 2, result.stderr
    assert any("https://www.trustpilot.com/review/acme.example?sort=recency&languages=all" in n for n in notes)
    assert any("https://www.yelp.com/biz/acme?osq=coffee&sort_by=date_desc" in n for n in notes)


def test_a_trustpilot_url_with_its_own_language_keeps_it_and_is_sorted_newest_first():
    from spiders.sites.trustpilot import TrustpilotSpider

    assert (TrustpilotSpider.crawl_url("https://de.trustpilot.com/review/a.de?languages=de")
            == "https://de.trustpilot.com/review/a.de?languages=de&sort=recency")
    # a copy of the page elsewhere (the demo, a test server) has no site defaults to undo
    assert TrustpilotSpider.crawl_url("http://127.0.0.1:8000/review/a.de") == "http://127.0.0.1:8000/review/a.de"


# --- 3. the silent baseline is said, and can be worked ---------------------------------------------------


def history() -> list:
    """45 reviews newest first: two recent negatives (alerted) and older history of every rating."""
    from tests.e2e.test_crawl import history as crawl_history

    return crawl_history()


def json_lines(text: str) -> list[dict]:
    import json

    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_the_first_crawl_says_what_it_stored_as_a_baseline_and_the_owner_can_list_it(e2e):
    e2e.publish(history())
    first = e2e.crawl()
    assert first.code == 0, first.stderr
    [line] = [line for line in first.stdout.splitlines() if "silent baseline" in line]
    older_negatives = [r for r in history()[4:] if r.rating <= 2]
    assert line.startswith("45 reviews stored as a silent baseline by the first crawl")
    assert f"{len(older_negatives)} of them negative and unanswered" in line
    assert "`repwatch reviews --unanswered --include-baseline`" in line

    plain = e2e.repwatch("reviews", "--unanswered")
    assert f"Not listed: {len(older_negatives)} older negative reviews from the silent baseline" in plain.stdout
    listed = json_lines(e2e.repwatch("reviews", "--unanswered", "--format", "json").stdout)
    assert len(listed) == 2
    everything = json_lines(e2e.repwatch("reviews", "--unanswered", "--include-baseline", "--format", "json").stdout)
    assert len(everything) == 2 + len(older_negatives)
    assert sum(r["baseline"] for r in everything) == len(older_negatives)

    second = e2e.crawl()  # said once: the second crawl is no baseline
    assert "baseline" not in second.stdout


# --- 7. --since is the review's date, --seen-since when repwatch first saw it ------------------------------


def test_since_filters_on_the_published_date_and_seen_since_on_first_seen(e2e):
    e2e.publish(history())
    assert e2e.crawl().code == 0
    recent = json_lines(e2e.repwatch("reviews", "--since", "2d", "--format", "json").stdout)
    assert sorted(r["id"] for r in recent) and len(recent) == 3  # published 3, 6 and 30 hours ago
    seen = json_lines(e2e.repwatch("reviews", "--seen-since", "2d", "--format", "json").stdout)
    assert len(seen) == 45  # all first seen by this crawl, back to 2026's history
    helped = run_cli("reviews", "--help", env={"COLUMNS": "200"})
    assert "published on the site within" in helped.stdout and "first seen by repwatch within" in helped.stdout


# --- 8. errors -------------------------------------------------------------------------------------------


def test_reviews_of_a_source_not_in_the_config_is_an_error(e2e):
    result = e2e.repwatch("reviews", "--source", "acme-trustpilott")
    assert result.code == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "acme-trustpilott" in line and "did you mean 'acme-trustpilot'" in line


# --- 5. a crawl log that shows each page, rotated; the summary names each source's problems -----------------


def test_the_crawl_log_has_a_timestamped_line_per_page_and_the_summary_names_a_failed_page(e2e):
    import re

    e2e.publish(history())
    e2e.site.set_status(f"/review/{DOMAIN}?page=2", 404)
    result = e2e.crawl()
    assert result.code == 0, result.stderr
    assert "source acme-trustpilot: 1 page failed to load" in result.stdout.splitlines()
    log = (e2e.tmp / "data" / "logs" / "crawl.log").read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    [page_1] = [line for line in log if "page 1:" in line]
    assert re.match(rf"{stamp} INFO repwatch.crawl: source acme-trustpilot page 1: HTTP 200, 20 reviews, \d+\.\d\d s: "
                    rf"http://127\.0\.0\.1:\d+/review/{DOMAIN}$", page_1), page_1
    [failed] = [line for line in log if "acme-trustpilot: HTTP 404" in line]
    assert re.match(rf"{stamp} WARNING repwatch.crawl: source acme-trustpilot: HTTP 404 at .*\?page=2$", failed), failed
    [done] = [line for line in log if "acme-trustpilot: ok," in line]
    assert re.match(rf"{stamp} INFO repwatch.crawl: source acme-trustpilot: ok, 1 page, 20 reviews \(20 new\), ", done)


def test_the_crawl_log_is_rotated(tmp_path, monkeypatch):
    import logging

    from spiders import runner

    monkeypatch.setattr(runner, "LOG_MAX_BYTES", 1000)
    handler = runner.crawl_log_handler(tmp_path / "crawl.log")
    try:
        for n in range(100):
            handler.emit(logging.makeLogRecord({"name": "repwatch.crawl", "msg": f"source a page {n}: HTTP 200"}))
    finally:
        handler.close()
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["crawl.log"] + [f"crawl.log.{n}" for n in range(1, runner.LOG_BACKUPS + 1)]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())


# --- 10. progress per source -----------------------------------------------------------------------------


def test_a_crawl_not_on_a_terminal_says_one_line_per_source_when_it_is_done(e2e):
    e2e.publish(history())
    result = e2e.crawl()
    assert result.code == 0
    [line] = [line for line in result.stderr.splitlines() if line.startswith("acme-trustpilot:")]
    assert re.match(r"acme-trustpilot: ok, 3 pages, 45 reviews read, \d+\.\d s$", line), line


def test_a_crawl_on_a_terminal_shows_pages_and_reviews_read_as_they_come(monkeypatch):
    import io

    from rich.console import Console

    from monitor import cli

    screen = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=screen, force_terminal=True, width=100, color_system=None))
    progress, stage = cli.crawl_display()
    with stage("crawling 1 source…"):
        progress({"source": "acme-trustpilot", "pages": 1, "reviews": 20})
        progress({"source": "acme-trustpilot", "pages": 2, "reviews": 40})
        progress({"source": "acme-trustpilot", "pages": 3, "reviews": 45, "done": True, "outcome": "ok", "seconds": 1})
    shown = screen.getvalue()
    assert "acme-trustpilot: ok" in shown and "3 pages · 45 reviews stored" in shown


# --- 6. tables are never cut when not on a terminal; wrapped on one -----------------------------------------


def test_tables_in_a_cron_log_keep_whole_names_and_dates_at_80_columns(e2e):
    long_name = "twenix-trustpilot-reviews-of-the-flagship-store-in-the-old-town"
    write_config(e2e.tmp, e2e.site.url, e2e.slack.api_url, source=(long_name, "trustpilot", f"{e2e.site.url}/review/{DOMAIN}"))
    e2e.publish(history())
    env = {"SLACK_BOT_TOKEN": "xoxb-e2e-token-123", "COLUMNS": "80"}
    crawled = run_cli("crawl", "--config", str(e2e.config), env=env)
    assert crawled.code == 0 and long_name in crawled.stdout, crawled.stdout
    for args in (("sources", "health"), ("status",), ("reviews",)):
        shown = run_cli(*args, "--config", str(e2e.config), env=env).stdout
        assert long_name in shown and "…" not in shown, (args, shown)
    listed = run_cli("reviews", "--config", str(e2e.config), env=env).stdout
    assert re.search(r"\b\d{4}-\d\d-\d\d\b", listed)


def test_tables_on_a_narrow_terminal_wrap_instead_of_cutting(monkeypatch):
    import io

    from rich.console import Console
    from rich.table import Table

    from monitor import cli

    screen = io.StringIO()
    monkeypatch.setattr(cli, "out", Console(file=screen, force_terminal=True, width=40, color_system=None))
    table = Table()
    for column in ("source", "last success"):
        table.add_column(column, no_wrap=True)
    table.add_row("twenix-trustpilot-reviews-of-the-store", "2026-12-06 05:00")
    cli.show(table)
    text = screen.getvalue()
    assert "…" not in text
    assert "2026-12-0" in text and "twenix-" in text and len(text.splitlines()) > 5


def config_with_source(tmp_path: Path, kind: str, url: str = "https://www.example.com/reviews", extra: str = "") -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f"""
data_dir: data
notifiers:
  slack:
    kind: slack
    token: ${{SLACK_BOT_TOKEN}}
    channel: "#reviews"
    api_url: http://127.0.0.1:1/api/
{extra}
businesses:
  - name: Twenix Café
    notify: [slack]
    sources:
      - name: twenix-site
        kind: schema_org
        url: https://twenix.example/reviews
      - name: twenix-feed
        kind: {kind}
        url: {url}
""")
    return config


def check(config: Path, *args: str) -> "object":
    return run_cli("config", "check", "--config", str(config), *args, env={"SLACK_BOT_TOKEN": "xoxb-1-2"})


def test_config_problems_name_the_source_and_a_kind_from_elsewhere_gets_a_hint(tmp_path):
    rss = check(config_with_source(tmp_path, "rss"))
    assert rss.code == 1
    [line] = rss.stderr.splitlines()
    assert "source twenix-feed: kind: unknown source kind 'rss'" in line and "use kind feed" in line
    assert "businesses.0" not in line
    trip = check(config_with_source(tmp_path, "tripadvisor"))
    assert "use kind schema_org or selectors" in trip.stderr


def test_one_address_is_a_list_of_one_and_a_pasted_token_is_warned_about(tmp_path):
    digest = """digest:
  from: repwatch@twenix.example
  to: owner@twenix.example
  smtp:
    host: 127.0.0.1
    port: 2525
    security: none"""
    config = config_with_source(tmp_path, "feed", "https://www.google.com/alerts/feeds/1/2", extra=digest)
    config.write_text(config.read_text().replace("${SLACK_BOT_TOKEN}", "xoxb-1234-5678-abcdef"))
    result = check(config)
    assert result.code == 0, result.stderr
    assert "OK (1 business, 2 sources, 1 notifier)" in result.stdout
    [warning] = [line for line in result.stderr.splitlines() if "secret" in line]
    assert "notifiers.slack.token: a secret written into the config file" in warning
    assert "token: ${SLACK_BOT_TOKEN}" in warning and "xoxb-1234" not in warning


def test_extract_suggests_the_spider_meant(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html></html>")
    result = run_cli("extract", str(page), "--spider", "trustpilt")
    assert result.code == 1 and "did you mean 'trustpilot'" in result.stderr


def test_alerts_test_slack_that_cannot_connect_says_one_line_without_will_retry(tmp_path):
    result = run_cli("alerts", "test", "slack", "--config", str(config_with_source(tmp_path, "feed")),
                     env={"SLACK_BOT_TOKEN": "xoxb-1-2"})
    assert result.code == 1
    [line] = result.stderr.splitlines()  # no slack-sdk "Failed to send a request to Slack API server" line
    assert line.startswith("slack: FAILED:") and "will retry" not in line and "try again later" in line


def test_version_and_config_show_durations_as_written_and_a_missing_config_names_its_folder(tmp_path):
    version = run_cli("--version")
    assert version.code == 0 and version.stdout.startswith("repwatch ")
    config = config_with_source(tmp_path, "feed")
    config.write_text(config.read_text() + "crawl:\n  timeout: 15m\nalerting:\n  baseline_window: 72h\n")
    shown = run_cli("config", "show", "--config", str(config), env={"SLACK_BOT_TOKEN": "xoxb-1-2"}).stdout
    assert "timeout: 15m" in shown and "baseline_window: 3d" in shown and "PT" not in shown
    missing = run_cli("crawl", "--config", "nowhere.yaml", cwd=tmp_path)
    assert missing.code == 1 and f"nowhere.yaml: no such file in {tmp_path.resolve()}" in missing.stderr


# --- 4. the real-use path works as written -----------------------------------------------------------------


def test_init_in_an_empty_directory_gives_a_config_that_checks_and_a_checkout_says_where_to_go(tmp_path):
    from tests.cli import run_process

    home = tmp_path / "repwatch"
    home.mkdir()
    made = run_process("init", cwd=home)
    assert made.code == 0 and (home / "config.yaml").is_file(), made.stderr
    checked = run_process("config", "check", cwd=home, env={"SLACK_BOT_TOKEN": "xoxb-1-2"})
    assert checked.code == 0 and "OK (1 business, 2 sources, 1 notifier)" in checked.stdout, checked.stderr
    elsewhere = run_cli("init", str(tmp_path / "new" / "place" / "config.yaml"))
    assert elsewhere.code == 0 and (tmp_path / "new" / "place" / "config.yaml").is_file()
    again = run_cli("init", cwd=home)  # as in the checkout, which ships a config.yaml
    assert again.code == 1 and "a directory of your own" in again.stderr and "repwatch init" in again.stderr


def readme_block(heading: str, language: str) -> list[str]:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index(heading):]
    block = section[section.index(f"```{language}\n") + len(language) + 4:]
    return block[: block.index("```")].strip().splitlines()


def test_the_demos_closing_box_and_the_readme_quick_start_give_the_same_commands(tmp_path):
    from demo.__main__ import CRON_LINE, real_use_steps

    def command(line: str) -> str:
        return line.split("  #")[0].strip()

    readme = [command(line) for line in readme_block("## Quick start for real use", "sh")]
    demo = [command(line) for line in real_use_steps(Path("/path/to/repwatch"))]
    assert demo[:-1] == readme
    assert demo[-1] == CRON_LINE
    assert readme_block("Then crawl every 30 minutes", "cron") == [CRON_LINE]
    assert "SLACK_BOT_TOKEN=xoxb" not in CRON_LINE  # the token stays in secrets.env, not in the crontab


def test_an_installed_repwatch_gets_every_data_file_its_packages_read():
    """`pip install` / `pipx install` copy only what pyproject's package-data names: a template or a language pack
    left out works in the checkout and fails in the first hour of real use."""
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["*"]
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    data = [p for pkg in packages for p in (root / pkg.rstrip("*")).rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert data  # the templates and language packs
    left_out = [str(p.relative_to(root)) for p in data if not any(fnmatch.fnmatch(p.name, g) for g in patterns)]
    assert not left_out


# --- 11. small things -------------------------------------------------------------------------------------


def test_after_handle_the_slack_thread_says_who_resolved_it_not_changed_on_the_site(e2e):
    e2e.publish(history())
    assert e2e.crawl().code == 0
    alerted = json_lines(e2e.repwatch("reviews", "--unanswered", "--format", "json").stdout)[0]
    before = len(e2e.slack.messages)
    handled = e2e.repwatch("handle", str(alerted["id"]), "--note", "called the customer", "--as", "ana")
    assert handled.code == 0, handled.stderr
    texts = [str(m.get("text", "")) + str(m.get("blocks", "")) for m in e2e.slack.messages[before:]]
    assert any(f"Review #{alerted['id']} marked resolved by ana: called the customer" in t for t in texts), texts
    assert not any("changed on Trustpilot" in t for t in texts)


def test_the_digest_calls_a_site_what_the_alerts_call_it(e2e):
    e2e.publish(history())
    assert e2e.crawl().code == 0
    from datetime import UTC, datetime, timedelta

    newest = datetime.now(UTC) - timedelta(hours=3)  # the week of the newest review (published 3 h ago)
    week = e2e.repwatch("digest", "--week", newest.strftime("%G-W%V"))
    assert week.code == 0, week.stderr
    named = [line for line in week.stdout.splitlines() if "★ " in line or "acme-trustpilot" in line]
    assert named and all("Trustpilot" in line and "127.0.0.1" not in line for line in named), named


# --- 12. the docs say what the program does ----------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
SLACK_EXAMPLE = REPO / "docs" / "slack-alert-example.json"


def demo_hostile_alert(tmp_path: Path) -> dict:
    """The Slack payload of the demo's hostile review, from the demo's own pages, config and first crawl."""
    from datetime import UTC, datetime

    from demo.__main__ import CONFIG, DEMO_APP_TOKEN, DEMO_TOKEN
    from demo.reviews import MENTIONS_PATH, demo_pages, mentions_feed
    from demo.server import SiteServer
    from demo.slack_receiver import SlackReceiver

    config = CONFIG  # its data_dir: ${DEMO_DATA_DIR}
    with SiteServer(robots_txt="User-agent: *\nDisallow: /admin/\n") as site, SlackReceiver(token=DEMO_TOKEN) as slack:
        now = datetime.now(UTC)
        for path, body in demo_pages(now, base_url=site.url).items():
            site.set_page(path, body)
        site.set_page(MENTIONS_PATH, mentions_feed(now, base_url=site.url))
        env = {"DEMO_SITE_URL": site.url, "DEMO_SLACK_API": slack.api_url, "SLACK_BOT_TOKEN": DEMO_TOKEN,
               "SLACK_APP_TOKEN": DEMO_APP_TOKEN, "DEMO_DATA_DIR": str(tmp_path / "data")}
        crawled = run_cli("crawl", "--config", str(config), env=env)
        assert crawled.code == 0, crawled.stderr
        [message] = [m for m in slack.messages if "READ THIS" in str(m.get("blocks"))]
    return {"text": message["text"], "blocks": message["blocks"]}


def comparable(payload: dict) -> str:
    """The payload as the docs keep it, with what differs from run to run (the port, the date) made the same."""
    import json

    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, indent=2) + "\n"
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "YYYY-MM-DD HH:MM UTC", text)


def test_the_example_slack_payload_in_the_docs_is_what_the_demo_sends(tmp_path):
    """docs/slack-alert-example.json is the demo's hostile alert; REPWATCH_REGENERATE_DOCS=1 rewrites it."""
    import json
    import os

    payload = demo_hostile_alert(tmp_path)
    if os.environ.get("REPWATCH_REGENERATE_DOCS"):
        SLACK_EXAMPLE.write_text(json.dumps(payload, ensure_ascii=False, sort_keys=True, indent=2) + "\n")
    assert comparable(json.loads(SLACK_EXAMPLE.read_text())) == comparable(payload), (
        "docs/slack-alert-example.json drifted from the demo: REPWATCH_REGENERATE_DOCS=1 pytest "
        "tests/e2e/test_first_hour.py -k example_slack_payload rewrites it")


def test_the_source_states_are_the_same_in_the_help_and_the_docs():
    help_text = run_cli("sources", "health", "--help", env={"COLUMNS": "300"}).stdout
    states = {"new", "ok", "failing", "blocked", "broken", "empty"}
    assert {w.strip(",.()") for w in " ".join(help_text.split()).split()} >= states
    sources_md = (REPO / "docs" / "sources.md").read_text()
    paragraph = sources_md[sources_md.index("Each source has a **state**"):].split("\n\n")[0]
    assert set(re.findall(r"`([a-z]+)`", paragraph)) == states
    cli_md = (REPO / "docs" / "cli.md").read_text()
    assert set(re.findall(r"`([a-z]+)`", cli_md[cli_md.index("Every configured source with its kind, state"):][:200])) == states


def test_no_cron_line_in_the_docs_carries_a_secret():
    seen = 0
    for doc in [REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        for line in doc.read_text().splitlines():
            if re.match(r"\s*(\*|\d+|@\w+)[/\d,*-]*\s.*repwatch ", line):
                seen += 1
                assert "secrets.env" in line and not re.search(r"(TOKEN|PASSWORD)=", line), (doc.name, line)
    assert seen >= 2  # README's and scheduling.md's


def test_alerts_test_slack_names_the_owners_business_and_the_channel(e2e):
    result = e2e.repwatch("alerts", "test", "slack")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "slack: sent to #reviews"
    [message] = e2e.slack.messages
    assert "Acme Coffee" in str(message) and "Example Bakery" not in str(message)
