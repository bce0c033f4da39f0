"""`python -m demo` (`make demo`): the whole pipeline offline, on a local review site and a local Slack stand-in."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.rule import Rule

from demo.reviews import (
    BUSINESS_NAME,
    MENTIONS_PATH,
    SCHEMA_ORG_PATH,
    TRUSTPILOT_DOMAIN,
    demo_pages,
    mentions_feed,
    newest_negative,
)
from demo.server import SiteServer
from demo.slack_receiver import SlackReceiver, render_message
from demo.slack_socket import click_payload

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "config.yaml"
DEMO_TOKEN = "xoxb-demo-not-a-real-token"
DEMO_USER = "demo"
DEMO_APP_TOKEN = "xapp-demo-not-a-real-token"  # Socket Mode: the work buttons' clicks come over it
PROXY_VARIABLES = {"https_proxy", "http_proxy", "all_proxy"}
DEMO_CLICKER = ("U0DEMOMARIA", "maria")  # a member of the demo channel, not linked to a repwatch user

console = Console(highlight=False, width=max(Console().width, 110))


def repwatch(*args: str, env: dict[str, str]) -> int:
    """Run the real `repwatch` command, as an operator would, showing its output."""
    command = [sys.executable, "-m", "monitor", *args]
    console.print(f"[bold cyan]$ repwatch {' '.join(args)}[/]")
    return subprocess.run(command, env=env).returncode


def show(messages: list[dict]) -> None:
    """Slack messages as they would read in the channel; a reply says which thread it is in."""
    for message in messages:
        if message.get("thread_ts"):
            console.print(f"  ↳ in the thread of ts {message['thread_ts']}", style="dim", highlight=False)
        console.print(render_message(message), markup=False, highlight=False, soft_wrap=True)
        console.print()


def take_it(slack: SlackReceiver, env: dict[str, str]) -> None:
    """One "Take it" click, the way a real one travels: `repwatch slack-listen` holds a Socket Mode connection to
    the stand-in, which delivers Slack's block_actions envelope; the listener assigns the review, acknowledges,
    and edits the alert in place."""
    socket = slack.socket
    assert socket is not None
    edited = {m["ts"] for m in slack.messages if m.get("kind") == "update"}
    alert = next((m for m in slack.messages if m.get("kind") == "post" and m["ts"] not in edited
                  and '"repwatch:take"' in json.dumps(m.get("blocks") or [])), None)
    if alert is None:
        console.print("no alert with a Take it button to click")
        return
    slack.members[alert["channel"]] = [DEMO_CLICKER[0]]  # allow: channel_members (demo/config.yaml)
    console.print(f"[bold cyan]$ repwatch slack-listen[/]   [dim](in the background; {DEMO_CLICKER[1]} clicks "
                  f"[ Take it ] on the alert of ts {alert['ts']})[/]")
    payload = click_payload(alert, "repwatch:take", user_id=DEMO_CLICKER[0], user_name=DEMO_CLICKER[1],
                            response_url=slack.response_url())
    review_id = str(payload["actions"][0]["value"]).split(":")[0]  # the button's value: "REVIEW_ID:VERSION"
    listener = subprocess.Popen([sys.executable, "-m", "monitor", "slack-listen"], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        socket.wait_connected(1, timeout=30)
        before = len(slack.messages)
        clicked = time.perf_counter()
        envelope = socket.send_interactive(payload)
        socket.wait_ack(envelope)
        acked = time.perf_counter() - clicked
        update = slack.wait_for_update(alert["ts"], since=before)
        updated = time.perf_counter() - clicked
    except TimeoutError as exc:
        console.print(f"the click did not go through: {exc}")
        return
    finally:
        listener.terminate()
        _, errors = listener.communicate(timeout=30)
    for line in errors.splitlines():
        console.print(f"  {line}", markup=False, highlight=False, style="dim")
    console.print(f"Slack had its acknowledgement {acked * 1000:.0f} ms after the click; the alert was edited in place "
                  f"(chat.update of ts {update['ts']}) after {updated * 1000:.0f} ms:")
    show([update])
    repwatch("trail", review_id, env=env)


def inbox_server(env: dict[str, str], port: int = 8080) -> tuple[Any, str, str]:
    """The team inbox over the demo's database, with a demo owner whose password is made now (the demo's database
    is new each run): (the server, not started yet; the login name; the password)."""
    from monitor.config import parse_config
    from monitor.service.pipeline import open_sessions
    from monitor.service.users import add_user
    from monitor.web.server import WebServer

    config = parse_config(CONFIG.read_text(encoding="utf-8"), env=env, origin=str(CONFIG), base_dir=HERE)
    sessions = open_sessions(config)
    password = secrets.token_urlsafe(12)
    add_user(sessions, DEMO_USER, "owner", password)
    try:
        server = WebServer(config, sessions=sessions, port=port)
    except OSError:  # 8080 taken: any free port
        server = WebServer(config, sessions=sessions, port=0)
    return server, DEMO_USER, password


def main(argv: list[str] | None = None) -> int:
    # The inbox is served until Ctrl-C only for somebody at a terminal: run from a script, CI or a pipe, the demo
    # ends (and says how to see the inbox) instead of waiting forever.
    serve = "--no-inbox" not in (sys.argv[1:] if argv is None else argv)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    started = time.monotonic()
    data_dir = Path(os.environ.get("DEMO_DATA_DIR") or HERE / "../data/demo").resolve()
    if data_dir.exists():
        shutil.rmtree(data_dir)  # the demo always starts from an empty database: its first crawl is the story
    with SiteServer(robots_txt="User-agent: *\nDisallow: /admin/\n") as site, SlackReceiver(token=DEMO_TOKEN, app_token=DEMO_APP_TOKEN) as slack:
        now = datetime.now(UTC)
        for path, body in demo_pages(now, base_url=site.url).items():
            site.set_page(path, body)
        site.set_page(MENTIONS_PATH, mentions_feed(now, base_url=site.url))
        env = {
            # everything is on 127.0.0.1: a proxy from the environment would only be in the way (slack-sdk's
            # Socket Mode client would tunnel the local WebSocket through it)
            **{k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES},
            "DEMO_SITE_URL": site.url,
            "DEMO_SLACK_API": slack.api_url,
            "SLACK_BOT_TOKEN": DEMO_TOKEN,
            "SLACK_APP_TOKEN": DEMO_APP_TOKEN,
            "DEMO_DATA_DIR": str(data_dir),
            "REPWATCH_CONFIG": str(CONFIG),
            "COLUMNS": str(console.width),
        }
        console.print(Panel.fit(
            f"[bold]repwatch demo[/]: {BUSINESS_NAME}\n"
            f"review site  {site.url}/review/{TRUSTPILOT_DOMAIN}  (Trustpilot structure, 3 pages)\n"
            f"             {site.url}{SCHEMA_ORG_PATH}  (schema.org JSON-LD, some without stars)\n"
            f"mentions     {site.url}{MENTIONS_PATH}  (a Google Alert's Atom feed)\n"
            "             posts in Polish, Romanian, Greek, German, Lithuanian, English: no stars, language detected\n"
            f"Slack        {slack.api_url}  (a local stand-in that checks messages as Slack would,\n"
            "             and speaks Socket Mode for the alerts' buttons)\n"
            f"database     {data_dir / 'repwatch.db'}",
        ))

        console.print(Rule("1. first crawl: store everything, alert only on recent negative reviews"))
        code = repwatch("crawl", env=env)

        console.print(Rule("2. what repwatch found: the negative reviews (`repwatch reviews` lists them all)"))
        repwatch("reviews", "--negative", "--limit", "20", env=env)

        threaded = sum(1 for message in slack.messages if message.get("thread_ts"))
        console.print(Rule(f"3. the Slack messages it sent ({len(slack.messages)})"
                           + (f": a flood summary, then the {threaded} alerts in its thread" if threaded else "")))
        show(slack.messages)

        console.print(Rule("4. crawl again: nothing new, so no requests beyond page 1 and no alerts"))
        before = len(slack.messages)
        site.reset_log()
        repwatch("crawl", env=env)
        pages = [r for r in site.requests if r.path != "/robots.txt"]
        statuses = ", ".join(f"{r.path} → {r.status}" for r in pages)
        console.print(f"site saw {len(pages)} page requests ({statuses}); new Slack messages: {len(slack.messages) - before}")

        console.print(Rule("5. the owner replies on the site: the alert is edited in place, not sent again"))
        answered = newest_negative(now)
        replies = {answered.id: "We are sorry, Harbour Lane should never be like this. Please email us: a free "
                                "breakfast is on us."}
        for path, body in demo_pages(now, base_url=site.url, replies=replies).items():
            site.set_page(path, body)
        before = len(slack.messages)
        repwatch("crawl", env=env)
        show(slack.messages[before:])

        console.print(Rule("6. a click in Slack: a teammate takes a complaint with the alert's [ Take it ] button"))
        take_it(slack, env)

        console.print(Rule("7. what still waits for an answer, and the state of the whole thing"))
        repwatch("reviews", "--unanswered", env=env)
        repwatch("status", env=env)

    # The README's quick start, with this checkout's path filled in, so every line works as printed.
    checkout = HERE.parent
    console.print(Panel.fit(
        f"Demo finished in {time.monotonic() - started:.0f} s.\n\n"
        "[bold]For real use[/], in a directory of your own (this checkout ships its own config.yaml):\n"
        + "".join(f"  {line}\n" for line in real_use_steps(checkout)[:-1]) + "\n"
        "README.md (\"Quick start for real use\") and docs/ cover Slack setup, scheduling, Docker and every command.",
    ))
    # The cron line on a line of its own, outside the box: a wrapped line with borders would not paste.
    console.print("Then every 30 minutes from cron: `crontab -e` and add", markup=False, highlight=False)
    console.print(real_use_steps(checkout)[-1], markup=False, highlight=False, soft_wrap=True)
    if serve and not interactive:
        console.print("The team inbox (docs/inbox.md) is served at the end of `make demo` run in a terminal, with a "
                      "demo login; not here (no terminal to stop it with Ctrl-C).", markup=False, highlight=False)
    if serve and interactive:
        console.print(Rule("8. the team inbox: every complaint in one place, worked by the team (docs/inbox.md)"))
        server, name, password = inbox_server(env)
        console.print(Panel.fit(
            f"[bold]The team inbox[/] with the demo's reviews: {server.url}/\n"
            f"log in as [bold]{name}[/] with the password [bold]{password}[/] (made for this run; printed once)\n"
            "Ctrl-C stops it.",
        ))
        server.serve_until_signal()
    return code


def real_use_steps(checkout: Path) -> list[str]:
    """The commands of README.md's "Quick start for real use", as they work when typed (tests/e2e/test_first_hour.py
    runs them and compares them with the README)."""
    return [
        "mkdir -p ~/repwatch && cd ~/repwatch",
        f"python3 -m venv .venv && .venv/bin/pip install {checkout}",
        ".venv/bin/repwatch init                # writes a commented config.yaml",
        "$EDITOR config.yaml                    # your business, its review pages, your Slack channel",
        "echo 'SLACK_BOT_TOKEN=xoxb-...' > secrets.env && chmod 600 secrets.env",
        "set -a && . ./secrets.env && set +a    # secrets come from the environment, never from config.yaml",
        ".venv/bin/repwatch config check && .venv/bin/repwatch alerts test slack",
        ".venv/bin/repwatch crawl               # first run: a silent baseline, then alerts on new negatives",
        CRON_LINE,  # for `crontab -e`
    ]


# The cron line of README.md: the token comes from secrets.env, as for every other command, never from the crontab.
CRON_LINE = ("*/30 * * * * cd ~/repwatch && set -a && . ./secrets.env && set +a && .venv/bin/repwatch crawl "
             ">> data/cron.log 2>&1")


if __name__ == "__main__":
    sys.exit(main())
