"""The inbox in a real browser (Playwright driving Debian's Chromium): the team's day, two people at once, a forged
form from another site, hostile review text, the core actions without JavaScript."""
from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from models.tables import Review
from tests.web.conftest import PASSWORDS

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="module")
def chromium():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


def log_in(chromium, inbox, name: str):
    context = chromium.new_context()
    page = context.new_page()
    page.goto(inbox.url + "/")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("button:has-text('Log in')")
    page.wait_for_url(inbox.url + "/")
    return page


def test_log_in_filter_open_assign_note_resolve_and_a_colleague_sees_it(chromium, sqlite_inbox):
    inbox = sqlite_inbox
    anonymous = chromium.new_context().new_page()
    anonymous.goto(f"{inbox.url}/reviews/{inbox.seeded.complaints[0]}")
    assert anonymous.url == f"{inbox.url}/login?next=%2Freviews%2F{inbox.seeded.complaints[0]}"

    page = log_in(chromium, inbox, "max")
    assert page.locator("tr.review").count() == 5
    page.select_option("select[name=language]", "en")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**language=en**")
    assert page.locator("tr.review").count() == 4
    assert "Kawa zimna" not in page.content()

    page.click("text=Customer 0")
    page.wait_for_url(f"{inbox.url}/reviews/{inbox.seeded.complaints[0]}")
    assert "The flat white was cold" in page.locator("blockquote.review-text").inner_text()
    page.click("button:has-text('Assign to me')")
    assert page.locator(".flash").inner_text() == "Assigned to max."
    assert page.locator(".work .assignee").inner_text() == "max"
    page.fill("textarea[name=text][aria-label='a note for the team']", "Called them: a refund is on its way.")
    page.click("button:has-text('Add note')")
    assert "Called them: a refund is on its way." in page.locator(".notes").inner_text()
    page.click("button:has-text('Mark resolved')")
    assert page.locator(".flash").inner_text() == "Marked resolved."

    page.click("nav >> text=Inbox")
    page.wait_for_url(inbox.url + "/")
    assert page.locator("tr.review").count() == 4
    assert page.locator("text=Customer 0").count() == 0  # resolved: gone from the default view

    colleague = log_in(chromium, inbox, "nina")
    assert colleague.locator("text=Customer 0").count() == 0
    colleague.goto(f"{inbox.url}/reviews/{inbox.seeded.complaints[0]}")
    assert colleague.locator(".work .status").inner_text() == "resolved"
    assert colleague.locator(".work .assignee").inner_text() == "max"
    assert "Called them: a refund is on its way." in colleague.locator(".notes").inner_text()
    trail = colleague.locator(".trail").inner_text()
    assert "max (web)" in trail and "resolved" in trail


def test_the_copy_button_copies_the_draft(chromium, sqlite_inbox):
    page = log_in(chromium, sqlite_inbox, "max")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=sqlite_inbox.url)
    page.goto(f"{sqlite_inbox.url}/reviews/{sqlite_inbox.seeded.complaints[1]}")
    page.fill("#draft", "Dear Customer 1, we are sorry about the wait.")
    page.click("button:has-text('Save draft')")
    assert page.locator(".flash").inner_text() == "Draft saved."
    page.click("button.copy")
    # the clipboard is written asynchronously: wait for the button to say so (Playwright polls until it does)
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect(page.locator("button.copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "Dear Customer 1, we are sorry about the wait."


class ForgerySite:
    """Another site (another port) whose page posts a form to the inbox, as a cross-site request forgery would."""

    def __init__(self, target: str):
        form = (f'<form id="forged" method="post" action="{target}"><input name="status" value="resolved"></form>'
                '<script>document.getElementById("forged").submit()</script>').encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.end_headers()
                self.wfile.write(form)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_form_posted_from_another_site_without_the_token_is_refused(chromium, sqlite_inbox):
    review = sqlite_inbox.seeded.complaints[2]
    page = log_in(chromium, sqlite_inbox, "max")
    forgery = ForgerySite(f"{sqlite_inbox.url}/reviews/{review}/status")
    try:
        with page.expect_navigation(url=f"{sqlite_inbox.url}/reviews/{review}/status"):
            page.goto(forgery.url)
        assert "This form is out of date or came from another site: nothing was changed." in page.content()
    finally:
        forgery.close()
    with sqlite_inbox.sessions() as session:
        assert session.get(Review, review).status == "new"


def test_hostile_review_text_is_inert_in_the_browser(chromium, sqlite_inbox):
    page = log_in(chromium, sqlite_inbox, "max")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    for path in ["/", f"/reviews/{sqlite_inbox.seeded.hostile}"]:
        page.goto(sqlite_inbox.url + path)
        assert page.evaluate("typeof window.pwned") == "undefined"
        for element in ("#pwn-author", "#pwn-img", "#pwn-link", "#pwn-title"):
            assert page.locator(element).count() == 0
    text = page.locator("blockquote.review-text").inner_text()
    assert '<script>window.pwned = "body"</script>' in text and "{{ 7*7 }}" in text
    assert page.locator("a.answer").count() == 0
    assert errors == []


def test_the_core_actions_work_with_javascript_disabled(chromium, sqlite_inbox):
    inbox = sqlite_inbox
    review = inbox.seeded.complaints[3]
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{inbox.url}/reviews/{review}")
    assert page.url == f"{inbox.url}/login?next=%2Freviews%2F{review}"
    page.fill("input[name=name]", "nina")
    page.fill("input[name=password]", PASSWORDS["nina"])
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{inbox.url}/reviews/{review}")
    assert page.locator("button.copy").is_hidden()  # our script shows it: proof that no script runs here

    page.click("nav >> text=Inbox")
    page.wait_for_url(inbox.url + "/")
    page.select_option("select[name=language]", "en")
    page.fill("input[name=q]", "bin")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**q=bin**")
    assert page.locator("tr.review").count() == 1
    page.click("text=Customer 3")
    page.wait_for_url(f"{inbox.url}/reviews/{review}")

    page.select_option("form.assign-to select[name=to]", "max")
    page.click("form.assign-to button:has-text('Assign')")
    assert page.locator(".flash").inner_text() == "Assigned to max."
    assert page.locator(".work .assignee").inner_text() == "max"
    page.click("button:has-text('Snooze 1 day')")
    assert page.locator(".flash").inner_text().startswith("Reminder snoozed until ")
    page.click("button:has-text('Mark resolved')")
    assert page.locator(".flash").inner_text() == "Marked resolved."
    assert page.locator(".work .status").inner_text() == "resolved"
    with inbox.sessions() as session:
        stored = session.get(Review, review)
        assert (stored.status, stored.assignee) == ("resolved", "max")
    context.close()
