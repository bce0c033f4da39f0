"""The review page's "Snooze 1 day": the reply reminder waits a day, as with the Slack button."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

from models.tables import Review
from monitor.service.work import review_events
from tests.web.conftest import csrf_of


def test_snooze_1_day_delays_the_reminder_and_the_page_says_until_when(inbox):
    review_id = inbox.seeded.complaints[0]
    client = inbox.login("nina")
    page = client.get(f"/reviews/{review_id}")
    assert "Snooze 1 day" in page.text and "reminder snoozed until" not in page.text
    before = datetime.now(UTC)
    answer = client.post(f"/reviews/{review_id}/snooze", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 303 and answer.headers["location"] == f"/reviews/{review_id}"
    shown = unescape(client.get(answer.headers["location"]).text)

    with inbox.sessions() as session:
        until = session.get(Review, review_id).snoozed_until
    until = until if until.tzinfo else until.replace(tzinfo=UTC)
    assert before + timedelta(days=1) <= until <= datetime.now(UTC) + timedelta(days=1)
    said = f"{until:%Y-%m-%d %H:%M} UTC"
    assert re.search(rf'<p class="flash" role="status">Reminder snoozed until {said}\.</p>', shown)
    assert f"reminder snoozed until {said}" in shown
    events = review_events(inbox.sessions, review_id)
    assert [(e.actor, e.via, e.action) for e in events] == [("nina", "web", "snooze")]
    assert "snoozed" in shown.split('class="trail"')[1]


def test_a_settled_review_has_no_snooze_button_and_a_snooze_needs_the_token(inbox):
    review_id = inbox.seeded.complaints[1]
    client = inbox.login("max")
    page = client.get(f"/reviews/{review_id}")
    assert client.post(f"/reviews/{review_id}/snooze", data={}).status_code == 403
    client.post(f"/reviews/{review_id}/status", data={"csrf": csrf_of(page.text), "status": "resolved"})
    assert "Snooze 1 day" not in client.get(f"/reviews/{review_id}").text
    with inbox.sessions() as session:
        assert session.get(Review, review_id).snoozed_until is None
