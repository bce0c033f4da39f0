"""Email notifier against a real SMTP server (aiosmtpd): MIME structure, escaping, one email per alert through the
outbox, SMTP failures; and `repwatch alerts test email` through the digest's SMTP settings."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from alerts.base import Alert, DeliveryError, SourceHealth, build_notifier
from alerts.email import EmailConfig, EmailNotifier, digest_test_message
from alerts.outbox import OutboxSettings, deliver_due
from models.tables import Business, Delivery, Review, Source
from monitor.config import ConfigError, parse_config, redacted
from tests.alerts.samples import HOSTILE_BODY, KINDS, all_notices
from tests.alerts.servers import LocalSMTP, Mailbox, authenticator
from tests.cli import Result, run_cli

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
SETTINGS = OutboxSettings(flood_threshold=5, max_attempts=3, max_inline_wait=timedelta(seconds=5), reply_deadline=None)


def mailer(controller: LocalSMTP, **smtp: Any) -> EmailNotifier:
    config = EmailConfig.model_validate({
        "kind": "email", "from": "repwatch <alerts@acme.example>", "to": ["owner@acme.example", "Manager <manager@acme.example>"],
        "smtp": {"host": "127.0.0.1", "port": controller.port, "security": "none", "timeout": 5, **smtp},
    })
    made = build_notifier("mail", config)
    assert isinstance(made, EmailNotifier)
    return made


def received(mailbox: Mailbox, index: int = -1) -> tuple[list[str], EmailMessage]:
    recipients, raw = mailbox.received[index]
    return recipients, message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and the HTML of a multipart/alternative email, checking that that is all it is."""
    assert message.get_content_type() == "multipart/alternative"
    text_part, html_part = message.get_payload()  # type: ignore[misc]
    assert text_part.get_content_type() == "text/plain" and html_part.get_content_type() == "text/html"
    return text_part.get_content().replace("\r\n", "\n"), html_part.get_content().replace("\r\n", "\n")


# --------------------------------------------------------------------------------------------------------------
# One alert


def test_an_alert_arrives_as_text_and_html_with_stars_business_and_site_in_the_subject(smtp_server, alert):
    mailbox = Mailbox()
    result = mailer(smtp_server(mailbox)).send(alert)
    recipients, message = received(mailbox)
    assert recipients == ["owner@acme.example", "manager@acme.example"]
    assert message["Subject"] == "🟠 1★ review · Acme Bakery · Trustpilot (high)"
    assert message["From"] == "repwatch <alerts@acme.example>" and message["Auto-Submitted"] == "auto-generated"
    assert result.remote_id == message["Message-ID"] and message["Message-ID"].endswith("@acme.example>")
    text, html = parts(message)
    for shown in (text, html):
        assert "Cold bread and rude staff. Never again." in shown and "“Awful morning”" in shown
        assert "Jane D." in shown and "★☆☆☆☆ 1/5" in shown and "2026-11-20 14:03 UTC" in shown
        assert "Hi Jane, we are sorry about your visit." in shown and "1★ rating" in shown
    assert "Open the review on the site: https://www.trustpilot.com/reviews/65a1b2c3d4" in text
    assert re.findall(r'href="([^"]+)"', html) == ["https://www.trustpilot.com/reviews/65a1b2c3d4"]


def test_every_review_field_is_escaped_in_html_and_shown_as_typed_in_text(smtp_server, alert):
    mailbox = Mailbox()
    hostile = replace(alert, body=HOSTILE_BODY, title="<b>Awful</b> \"quoted\" & co", author="<img src=x onerror=alert(1)>",
                      business="Acme <script>", site="Trust<pilot>", why="<i>why</i>", draft_reply="<a href='javascript:x'>hi</a>",
                      language="en<br>", url="https://www.trustpilot.com/reviews/1?a=1&b=<2>")
    mailer(smtp_server(mailbox)).send(hostile)
    _, message = received(mailbox)
    text, html = parts(message)
    for raw in ("<script>", "<b>", "<img", "<i>", "<a href='javascript", "<br>\n<br>", "onerror=alert(1)>"):
        assert raw not in html.replace("<br>\n", "\n"), raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;Awful&lt;/b&gt; &quot;quoted&quot; &amp; co" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "Trust&lt;pilot&gt;" in html
    # Links only where we put them, to the review's http(s) URL with its unsafe characters encoded.
    assert re.findall(r'href="([^"]+)"', html) == ["https://www.trustpilot.com/reviews/1?a=1&amp;b=%3C2%3E"]
    assert "<script>alert(1)</script>" in text and "<b>Awful</b>" in text  # text/plain: as typed, nothing to render


def test_no_header_can_be_injected_from_review_text(smtp_server, alert):
    mailbox = Mailbox()
    sneaky = replace(alert, business="Acme\r\nBcc: thief@evil.example", site="Trust\npilot\r\nX-Evil: 1", rating=2)
    mailer(smtp_server(mailbox)).send(sneaky)
    recipients, message = received(mailbox)
    assert recipients == ["owner@acme.example", "manager@acme.example"]
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert message["Subject"] == "🟠 2★ review · Acme Bcc: thief@evil.example · Trust pilot X-Evil: 1 (high)"


def test_a_review_without_a_usable_link_gets_no_button(smtp_server, alert):
    mailbox = Mailbox()
    mailer(smtp_server(mailbox)).send(replace(alert, url="javascript:alert(1)"))
    text, html = parts(received(mailbox)[1])
    assert "href" not in html and "javascript" not in html
    assert "No usable link: the review URL is not http(s)" in text


def test_the_test_email_names_the_business(smtp_server):
    mailbox = Mailbox()
    mailer(smtp_server(mailbox)).send_test("Acme Bakery")
    _, message = received(mailbox)
    assert message["Subject"] == "🟠 1★ review · Acme Bakery · Example Reviews (high)"
    assert "This is a test alert from repwatch." in parts(message)[0]


# --------------------------------------------------------------------------------------------------------------
# Notices


def test_every_notice_is_an_email_of_its_own(smtp_server, alert, other):
    mailbox = Mailbox()
    notifier = mailer(smtp_server(mailbox))
    notices = all_notices(alert, other)
    health = SourceHealth(event="bad", business="Acme Bakery", source="acme-trustpilot", site="Trustpilot",
                          url="https://www.trustpilot.com/review/acme.example", state="blocked", failures=3,
                          error="HTTP 403 <blocked>", last_success_at=NOW)
    for kind in KINDS:
        notifier.send_notice(notices[kind])
    notifier.send_notice(health)
    subjects = [received(mailbox, i)[1]["Subject"] for i in range(len(KINDS) + 1)]
    assert subjects == [
        "✅ Settled: 🟠 4★ review · Acme Bakery · Trustpilot",
        "🔄 Changed: 🟠 1★ review · Acme Bakery · Trustpilot",
        "⏰ Still unanswered after 2 days 5 h: 🟠 1★ review · Acme Bakery · Trustpilot",
        "📈 Negative review spike · Acme Bakery · Trustpilot",
        "📣 3 new review alerts in one run",
        "🛑 acme-trustpilot (Trustpilot) is blocked: repwatch cannot see its reviews",
    ]
    update_text, _ = parts(received(mailbox, 0)[1])
    assert "• rating 1★ → 4★\n• the business replied on the site\nNo action needed." in update_text
    reminder_text, _ = parts(received(mailbox, 2)[1])
    assert "No reply on the site after 2 days 5 h; the reply deadline is 48 h (overdue by 5 h)." in reminder_text
    spike_text, spike_html = parts(received(mailbox, 3)[1])
    assert "9 negative reviews in the 24 h up to 2026-11-21 09:00 UTC." in spike_text
    assert spike_html.count("Open review</a>") == 3  # three examples
    summary_text, summary_html = parts(received(mailbox, 4)[1])
    assert "By severity: 🔴 1 critical · 🟠 2 high" in summary_text and summary_html.count("<li") == 3
    _, health_html = parts(received(mailbox, 5)[1])
    assert "HTTP 403 &lt;blocked&gt;" in health_html


def test_a_flood_summary_lists_what_an_email_can_hold_then_and_n_more(smtp_server, alert, other):
    mailbox = Mailbox()
    mailer(smtp_server(mailbox)).send_notice(all_notices(alert, other, many=250)["summary"])
    text, html = parts(received(mailbox)[1])
    assert html.count("<li") == 201 and "• …and 50 more (repwatch reviews --negative)" in text.splitlines()


# --------------------------------------------------------------------------------------------------------------
# Through the outbox: one email per alert, retries follow the SMTP code


class Alerts:
    """Review ids → Alert values, as the service layer's builder would give them."""

    def __init__(self, alert: Alert):
        self.alert = alert

    def alerts(self, session: Any, review_ids: list[int]) -> dict[int, Alert]:
        return {i: replace(self.alert, review_id=i, body=f"Awful visit number {i}") for i in review_ids}


def queue(sessions, n: int) -> list[int]:
    with sessions.begin() as session:
        source = Source(name="acme", kind="trustpilot", url="https://www.trustpilot.com/review/acme.example",
                        business=Business(name="Acme"))
        ids = []
        for i in range(n):
            review = Review(source=source, external_id=f"r{i}", url=f"https://www.trustpilot.com/reviews/r{i}",
                            body="x", rating=1, content_hash=str(i), sentiment_label="neg", severity="high")
            session.add(review)
            session.flush()
            session.add(Delivery(review_id=review.id, destination="mail", next_attempt_at=NOW, dedupe_key=f"alert:{review.id}"))
            ids.append(review.id)
        return ids


def statuses(sessions) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(Delivery.status).order_by(Delivery.id)))


def test_the_outbox_sends_one_email_per_alert(sessions, smtp_server, alert):
    mailbox = Mailbox()
    ids = queue(sessions, 3)
    notifiers = {"mail": mailer(smtp_server(mailbox))}
    report = deliver_due(sessions, notifiers, Alerts(alert), SETTINGS, now=lambda: NOW)
    assert report.sent == 3 and report.ok and statuses(sessions) == ["sent"] * 3
    bodies = [parts(received(mailbox, i)[1])[0] for i in range(3)]
    assert [f"Awful visit number {i}" in body for i, body in zip(ids, bodies, strict=True)] == [True] * 3
    assert deliver_due(sessions, notifiers, Alerts(alert), SETTINGS, now=lambda: NOW).sent == 0  # once, not again


def test_a_flood_becomes_one_email_listing_every_alert(sessions, smtp_server, alert):
    mailbox = Mailbox()
    queue(sessions, 4)
    flood = replace(SETTINGS, flood_threshold=3)
    report = deliver_due(sessions, {"mail": mailer(smtp_server(mailbox))}, Alerts(alert), flood, now=lambda: NOW)
    assert report.summaries == 1 and len(mailbox.received) == 1 and statuses(sessions) == ["sent"] * 5
    text, _ = parts(received(mailbox)[1])
    assert text.count("• 🟠 1★ review · Acme Bakery · Trustpilot") == 4


@pytest.mark.parametrize(("reply", "status"), [("451 4.3.0 try again later", "pending"), ("550 5.7.1 refused", "failed")])
def test_a_transient_refusal_is_retried_and_a_permanent_one_is_not(sessions, smtp_server, alert, reply, status):
    queue(sessions, 1)
    report = deliver_due(sessions, {"mail": mailer(smtp_server(Mailbox(data_reply=reply)))}, Alerts(alert), SETTINGS,
                         now=lambda: NOW)
    assert statuses(sessions) == [status] and report.problems[0].startswith("mail: SMTP 127.0.0.1:")
    assert reply in report.problems[0]


def test_a_login_refusal_points_at_this_notifiers_settings_and_never_shows_the_password(smtp_server, alert):
    controller = smtp_server(Mailbox(), authenticator=authenticator, auth_require_tls=False)
    with pytest.raises(DeliveryError) as caught:
        mailer(controller, username="digest", password="wrong-pass-0f3a").send(alert)
    assert "check notifiers.mail.smtp.username and password" in str(caught.value)
    assert "wrong-pass-0f3a" not in str(caught.value) and not caught.value.retryable


# --------------------------------------------------------------------------------------------------------------
# Config


def test_an_email_notifier_in_config_yaml(tmp_path):
    config = parse_config('notifiers:\n  mail:\n    kind: email\n    from: "repwatch <alerts@acme.example>"\n'
                          '    to: [owner@acme.example]\n    smtp: {host: smtp.acme.example, username: r, password: "${SMTP_PASSWORD}"}\n',
                          env={"SMTP_PASSWORD": "pw-s3cr3t"})
    assert isinstance(build_notifier("mail", config.notifiers["mail"]), EmailNotifier)
    shown = json.dumps(redacted(config))
    assert "pw-s3cr3t" not in shown and '"from": "repwatch <alerts@acme.example>"' in shown


@pytest.mark.parametrize(("entry", "message"), [
    ("    from: nobody\n    to: [a@b.example]\n    smtp: {host: h}\n", "notifiers.mail.from: not an email address"),
    ("    from: a@b.example\n    to: []\n    smtp: {host: h}\n", "notifiers.mail.to:"),
    ("    from: a@b.example\n    to: [\"x@y.example\\nBcc: z@evil.example\"]\n    smtp: {host: h}\n", "one line"),
    ("    from: a@b.example\n    to: [a@b.example]\n", "notifiers.mail.smtp:"),
])
def test_config_errors_name_the_key(entry, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(f"notifiers:\n  mail:\n    kind: email\n{entry}", env={})
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


# --------------------------------------------------------------------------------------------------------------
# repwatch alerts test email, with no email notifier: a short email through the digest's SMTP settings


def repwatch(*args: str) -> Result:
    return run_cli(*args, cwd=REPO)

def email_config(tmp_path: Path, port: int | None) -> Path:
    path = tmp_path / "config.yaml"
    digest = (f"digest:\n  from: repwatch <digest@acme.example>\n  to: [owner@acme.example, \"Manager <manager@acme.example>\"]\n"
              f"  smtp: {{host: 127.0.0.1, port: {port}, security: none, timeout: 5}}\n") if port else ""
    path.write_text(digest or "notifiers: {}\n", encoding="utf-8")
    return path


def test_alerts_test_email_sends_through_the_digest_smtp_settings(tmp_path, smtp_server):
    mailbox = Mailbox()
    result = repwatch("alerts", "test", "email", "--config", str(email_config(tmp_path, smtp_server(mailbox).port)))
    assert result.code == 0, result.stderr
    port = result.stdout.strip().rsplit(":", 1)[1]
    assert result.stdout.strip() == f"email: sent a test email to owner@acme.example, manager@acme.example via SMTP 127.0.0.1:{port}"
    [(recipients, raw)] = mailbox.received
    assert recipients == ["owner@acme.example", "manager@acme.example"]
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "repwatch test email" and message["Auto-Submitted"] == "auto-generated"
    assert "test email from repwatch" in message.get_content()


def test_alerts_test_email_failure_is_one_line_and_exit_1(tmp_path, smtp_server):
    result = repwatch("alerts", "test", "email", "--config",
                      str(email_config(tmp_path, smtp_server(Mailbox(data_reply="554 5.7.1 spam")).port)))
    assert result.code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("repwatch: test email not sent: SMTP 127.0.0.1:") and line.endswith(": 554 5.7.1 spam")


def test_alerts_test_email_without_a_digest_section_says_so(tmp_path):
    result = repwatch("alerts", "test", "email", "--config", str(email_config(tmp_path, None)))
    assert result.code == 1
    [line] = result.stderr.strip().splitlines()
    assert "has no digest: section" in line


def test_the_digest_test_message_is_what_the_command_sends():
    config = parse_config("digest:\n  from: repwatch <digest@acme.example>\n  to: [owner@acme.example]\n  smtp: {host: h}\n", env={})
    message = digest_test_message(config.digest, NOW)
    assert message["Subject"] == "repwatch test email" and message["To"] == "owner@acme.example"
    assert message["Date"] == "Fri, 20 Nov 2026 12:00:00 +0000"
    assert "the weekly digest can reach you" in message.get_content()
