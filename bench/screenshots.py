"""docs/inbox.png and docs/review.png from the demo's data: `python -m bench.screenshots` (needs Chromium).

Runs the offline demo (`python -m demo --no-inbox`) to fill data/demo, has two people work a few complaints through
the service layer (as the inbox's buttons would), serves the inbox on a free port and photographs it with
Playwright driving Debian's Chromium.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
ENV = {"DEMO_SITE_URL": "http://127.0.0.1:9", "DEMO_SLACK_API": "http://127.0.0.1:9/api/",
       "SLACK_BOT_TOKEN": "xoxb-demo-not-a-real-token"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--skip-demo", action="store_true", help="reuse data/demo from an earlier run")
    args = parser.parse_args()

    from demo.__main__ import inbox_server
    from demo.__main__ import main as demo
    from monitor.service.inbox import InboxQuery, inbox
    from monitor.service.users import add_user
    from monitor.service.work import Actor, add_note, assign, save_draft

    if not args.skip_demo and demo(["--no-inbox"]) != 0:
        print("the demo failed: no screenshots", file=sys.stderr)
        return 1
    server, name, password = inbox_server(ENV, port=0)
    sessions, config = server.sessions, server.app.state.inbox.config
    add_user(sessions, "sam", "member", "sam-the-barista-1")
    rows = inbox(sessions, config, InboxQuery()).rows
    if len(rows) < 3:
        print(f"the demo left {len(rows)} complaints in the inbox: expected more", file=sys.stderr)
        return 1
    sam, owner = Actor("sam", "web"), Actor(name, "web")
    featured = rows[0]
    assign(sessions, featured.id, sam, check_user=True)
    add_note(sessions, featured.id, "Called the café: the machine was broken that morning. Offering a refund.", sam)
    detail_draft = f"Dear {featured.author}, we are sorry: that morning our machine failed us. Please write to " \
                   "hello@harbourlane.example and the next coffee is on us. Maria, Harbour Lane Coffee"
    save_draft(sessions, featured.id, detail_draft, sam)
    assign(sessions, rows[2].id, owner, to="sam", check_user=True)

    with server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 860}, device_scale_factor=1)
        page.goto(server.url + "/login")
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", password)
        page.click("button:has-text('Log in')")
        page.wait_for_url(server.url + "/")
        page.screenshot(path=str(DOCS / "inbox.png"))
        page.goto(f"{server.url}/reviews/{featured.id}")
        page.screenshot(path=str(DOCS / "review.png"), full_page=True)
        browser.close()
    print(f"wrote {DOCS / 'inbox.png'} and {DOCS / 'review.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
