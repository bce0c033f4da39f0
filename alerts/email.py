"""Email over SMTP: sending one message, SMTP failures as DeliveryErrors, the `digest:` settings, the email notifier."""
from __future__ import annotations

import html
import io
import ipaddress
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from typing import Annotated, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from alerts.base import (
    Builders,
    Alert,
    AlertUpdate,
    DeliveryError,
    FloodSummary,
    Notifier,
    Reminder,
    SendResult,
    SourceHealth,
    Spike,
    Target,
)
from alerts.phrasing import (
    CHANGE_MAX,
    CHANGES_SHOWN,
    EXCERPT_MAX,
    SPIKE_EXAMPLES_SHOWN,
    SUMMARY_COMMAND,
    alert_facts,
    businesses,
    duration,
    excerpt,
    headline,
    health_lines,
    not_listed,
    severities,
    spike_facts,
    spike_scope,
    summary_title,
    waiting,
    who,
)
from alerts.text import fit_plain, safe_review_url, visible_text
from models.vocab import Strict, mask_secrets

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
SUBJECT_FIELDS = ("business", "week")
# A server's reply is shown to the operator; a hostile or chatty server must not flood the terminal.
REPLY_SHOWN = 200


class SmtpSettings(Strict):
    host: str = Field(min_length=1)
    port: int | None = Field(None, ge=1, le=65535, description="default: 587 starttls, 465 ssl, 25 none")
    security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description="starttls (port 587), ssl (implicit TLS, port 465), none (a local relay only)"
    )
    username: str | None = None
    password: SecretStr | None = None
    timeout: float = Field(30.0, gt=0, le=600, description="seconds per SMTP step; a hung server fails, not hangs")

    @model_validator(mode="after")
    def _credentials(self) -> SmtpSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password, or neither")
        if self.password is not None and self.security == "none" and not _is_loopback(self.host):
            # smtplib would happily send AUTH PLAIN in clear text across the network.
            raise ValueError("security: none would send the password unencrypted; use starttls or ssl")
        return self

    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]


class MailSettings(Strict):
    """Who gets the mail (`from`, `to`) and the SMTP server that sends it: the digest and the email notifier."""

    # `config show` prints the key as written (`from`), not the Python name.
    model_config = ConfigDict(**Strict.model_config, serialize_by_alias=True)

    sender: str = Field(alias="from", description='e.g. "repwatch <repwatch@example.com>"')
    # one address may be written without a list: `to: owner@example.com`
    to: Annotated[list[str], BeforeValidator(lambda value: [value] if isinstance(value, str) else value)] = Field(
        min_length=1)
    smtp: SmtpSettings

    @field_validator("sender")
    @classmethod
    def _one_address(cls, value: str) -> str:
        _check_address(value)
        return value

    @field_validator("to")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        for value in values:
            _check_address(value)
        return values


class DigestSettings(MailSettings):
    """The weekly digest email: who gets it and the SMTP server that sends it."""

    subject: str = Field("Reviews of {business}, week {week}", description="placeholders: {business}, {week}")

    @field_validator("subject")
    @classmethod
    def _subject_template(cls, value: str) -> str:
        if "\n" in value or "\r" in value:
            raise ValueError("must be one line")
        try:
            value.format(**{name: "x" for name in SUBJECT_FIELDS})
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"bad placeholder {exc}; allowed: {', '.join('{' + n + '}' for n in SUBJECT_FIELDS)}") from None
        return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")


def _check_address(value: str) -> None:
    if "\n" in value or "\r" in value:
        raise ValueError("an address must be one line")
    _, address = parseaddr(value)
    if not _ADDRESS.match(address):
        raise ValueError(f"not an email address: {value!r}")


# --------------------------------------------------------------------------------------------------------------
# Sending


class DeliveryOutcomeUnknown(DeliveryError):
    """The connection failed after the message was handed over: the server may have delivered it.

    smtplib cannot tell; retrying could send the email twice, so this is never marked retryable.
    """

    def __init__(self, message: str):
        super().__init__(message, retryable=False)


@dataclass(frozen=True)
class EmailReport:
    """Who the server accepted the message for, and who it refused (address -> SMTP reply)."""

    accepted: list[str]
    refused: dict[str, str] = field(default_factory=dict)


def smtp_reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    text = " ".join(text.split())
    if len(text) > REPLY_SHOWN:
        text = text[: REPLY_SHOWN - 1] + "…"
    return f"{code} {text}".strip()


def is_transient(code: int) -> bool:
    """RFC 5321: 4yz is a transient failure (try again later), 5yz permanent; anything else we treat as permanent."""
    return 400 <= code < 500


def classify_smtp_error(exc: BaseException, where: str, settings_path: str = "digest.smtp") -> DeliveryError:
    """One smtplib/socket failure as a DeliveryError whose `retryable` follows the SMTP code, not the class.

    smtplib raises the same class for a 451 (try later) and a 550 (never): SMTPDataError, SMTPSenderRefused and
    SMTPAuthenticationError all carry `smtp_code`, which is what decides. SMTPRecipientsRefused has no code of its
    own, only one per recipient: retryable only when every refusal was transient. `settings_path` is where the
    hints send the operator (the config key of these SMTP settings).
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = {rcpt: smtp_reply(code, reply) for rcpt, (code, reply) in exc.recipients.items()}
        retryable = bool(exc.recipients) and all(is_transient(code) for code, _ in exc.recipients.values())
        listed = "; ".join(f"{rcpt}: {reply}" for rcpt, reply in replies.items())
        return DeliveryError(f"{where}: every recipient refused ({listed})", retryable=retryable)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        hint = "" if is_transient(exc.smtp_code) else f" (check {settings_path}.username and password)"
        return DeliveryError(
            f"{where}: login refused: {smtp_reply(exc.smtp_code, exc.smtp_error)}{hint}", retryable=is_transient(exc.smtp_code)
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return DeliveryError(f"{where}: {smtp_reply(exc.smtp_code, exc.smtp_error)}", retryable=is_transient(exc.smtp_code))
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"{where}: {exc} (check {settings_path}.security)", retryable=False)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(f"{where}: the server's TLS certificate is not trusted ({exc.verify_message})", retryable=False)
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(
            f"{where}: TLS failed ({exc.reason or type(exc).__name__}); is {settings_path}.security right for this port?",
            retryable=False,
        )
    if isinstance(exc, TimeoutError):
        return DeliveryError(f"{where}: no answer in time", retryable=True)
    if isinstance(exc, ConnectionRefusedError):
        return DeliveryError(f"{where}: connection refused", retryable=True)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return DeliveryError(f"{where}: the server closed the connection", retryable=True)
    if isinstance(exc, OSError):
        return DeliveryError(f"{where}: {exc.strerror or type(exc).__name__}", retryable=True)
    return DeliveryError(f"{where}: {type(exc).__name__}", retryable=False)


def send_email(message: EmailMessage, settings: SmtpSettings, *, settings_path: str = "digest.smtp") -> EmailReport:
    """Send one message; raise DeliveryError (never with the password in it) when nobody got it.

    Recipients come from the To and Cc headers. If the server accepts some and refuses others the mail went out:
    the refusals are returned, not raised, so a caller that retries does not send it twice.
    """
    where = f"SMTP {settings.host}:{settings.effective_port()}"
    secret = settings.password.get_secret_value() if settings.password else None
    try:
        return _send(message, settings)
    except DeliveryError as exc:
        exc.message = _redact(exc.message, secret)
        raise
    except (smtplib.SMTPException, OSError) as exc:
        error = classify_smtp_error(exc, where, settings_path)
        error.message = _redact(error.message, secret)
        raise error from None


def _send(message: EmailMessage, settings: SmtpSettings) -> EmailReport:
    where = f"SMTP {settings.host}:{settings.effective_port()}"
    sender = parseaddr(message["From"])[1]
    recipients = [address for _, address in getaddresses(message.get_all("To", []) + message.get_all("Cc", []))]
    data = _wire_bytes(message)
    # create_default_context() verifies the certificate and host name; smtplib's own default for starttls()
    # does not verify anything.
    context = ssl.create_default_context()
    smtp = (smtplib.SMTP_SSL(settings.host, settings.effective_port(), timeout=settings.timeout, context=context)
            if settings.security == "ssl" else smtplib.SMTP(settings.host, settings.effective_port(), timeout=settings.timeout))
    try:
        smtp.ehlo()
        if settings.security == "starttls":
            smtp.starttls(context=context)  # raises SMTPNotSupportedError rather than falling back to clear text
            smtp.ehlo()
        if settings.username is not None and settings.password is not None:
            smtp.login(settings.username, settings.password.get_secret_value())
        code, reply = smtp.mail(sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        refused: dict[str, tuple[int, bytes]] = {}
        for rcpt in recipients:
            code, reply = smtp.rcpt(rcpt)
            if code not in (250, 251):
                refused[rcpt] = (code, reply)
        if len(refused) == len(recipients):
            raise smtplib.SMTPRecipientsRefused(refused)
        try:
            code, reply = smtp.data(data)
        except (TimeoutError, smtplib.SMTPServerDisconnected, ConnectionError) as exc:
            # The whole message may have reached the server before the connection broke (DESIGN §7).
            what = "no answer in time" if isinstance(exc, TimeoutError) else "the connection broke"
            raise DeliveryOutcomeUnknown(
                f"{where}: {what} after the message was sent; it may have been delivered, check before sending again"
            ) from None
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass  # the server took the message; a failed goodbye must not turn into a retry (and a duplicate)
    finally:
        smtp.close()
    accepted = [r for r in recipients if r not in refused]
    return EmailReport(accepted=accepted, refused={r: smtp_reply(c, m) for r, (c, m) in refused.items()})


def _wire_bytes(message: EmailMessage) -> bytes:
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=message.policy.clone(linesep="\r\n")).flatten(message)
    return buffer.getvalue()


def _redact(text: str, secret: str | None) -> str:
    """Belt and braces: a server may echo what it was sent (e.g. in a 535 reply)."""
    return mask_secrets(text, secret) if secret and len(secret) >= 3 else text


def mailbox(value: str) -> Address:
    """A config address ("Name <a@b>" or "a@b") as a header Address."""
    name, address = parseaddr(value)
    return Address(display_name=name, addr_spec=address)


def digest_test_message(settings: DigestSettings, now: datetime) -> EmailMessage:
    """`repwatch alerts test email` with no email notifier configured: a short email through the digest's settings."""
    sender = mailbox(settings.sender)
    message = EmailMessage()
    message["Subject"] = "repwatch test email"
    message["From"] = sender
    message["To"] = [mailbox(address) for address in settings.to]
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("test", domain=sender.domain or "repwatch.invalid")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        "This is a test email from repwatch (repwatch alerts test email).\n"
        "If you can read this, the weekly digest can reach you through these SMTP settings.\n"
    )
    return message


# --------------------------------------------------------------------------------------------------------------
# The email notifier: what each alert and notice says, written once as plain text and once as HTML (every piece of
# it escaped there: names and review text are untrusted), in one multipart/alternative email.

SUBJECT_MAX = 200
# A flood summary lists this many reviews, then "and N more": an email has room, but not for a thousand.
LIST_MAX = 200


class EmailConfig(MailSettings):
    """`from`, `to` (one or more addresses) and `smtp` (host, port, security, username, password, timeout)."""

    kind: Literal["email"]


@dataclass(frozen=True)
class Letter:
    """What one email says, before it is written out: every string in it is shown as text, never as markup."""

    subject: str
    heading: str
    lines: tuple[str, ...] = ()  # short lines under the heading
    facts: tuple[tuple[str, str], ...] = ()  # label, value
    sections: tuple[tuple[str, str], ...] = ()  # label, text (the review, the draft ...), newlines kept
    items: tuple[tuple[str, str | None], ...] = ()  # a list of reviews: line, safe link or None
    link: str | None = None  # a safe http(s) URL for the button
    link_label: str = "Open the review on the site"
    footer: str = ""


def _footer(alert: Alert) -> str:
    return f"repwatch · source {visible_text(alert.source, single_line=True)} · review #{alert.review_id}"


def _review_sections(alert: Alert) -> list[tuple[str, str]]:
    title = visible_text(alert.title, single_line=True)
    return [(f"“{title}”" if title else "The review", visible_text(alert.body) or "(no text)")]


def _draft_section(alert: Alert) -> list[tuple[str, str]]:
    draft = visible_text(alert.draft_reply)
    return [("Draft reply, not posted: edit it and post it on the site yourself", draft)] if draft else []


def _list_item(alert: Alert) -> tuple[str, str | None]:
    return f"{headline(alert)} — “{fit_plain(excerpt(alert), EXCERPT_MAX)}”", safe_review_url(alert.url)


def alert_letter(alert: Alert) -> Letter:
    site, business, severity, _ = who(alert)
    sections = _review_sections(alert)
    why = visible_text(alert.why, single_line=True)
    if why:
        sections.append(("Why it fired", why))
    sections += _draft_section(alert)
    url = safe_review_url(alert.url)
    return Letter(
        subject=f"{headline(alert)} ({severity})",
        heading=headline(alert),
        lines=() if url else ("No usable link: the review URL is not http(s)",),
        facts=tuple(alert_facts(alert, severity=severity, site=site, business=business)),
        sections=tuple(sections),
        link=url,
        footer=_footer(alert),
    )


def update_letter(update: AlertUpdate) -> Letter:
    alert = update.alert
    site, business, severity, _ = who(alert)
    mark, word = ("✅", "Settled") if update.settled else ("🔄", "Changed")
    changes = [visible_text(line, single_line=True) for line in update.changes]
    lines = ["• " + fit_plain(line, CHANGE_MAX) for line in changes if line][:CHANGES_SHOWN] or ["• (no details)"]
    left = len([line for line in changes if line]) - CHANGES_SHOWN
    if left > 0:
        lines.append(f"…and {left} more change{'s' if left != 1 else ''}")
    lines.append("No action needed." if update.settled else "Still open: reply on the site if nobody has yet.")
    return Letter(
        subject=f"{mark} {word}: {headline(alert)}",
        heading=f"{mark} {word}: {headline(alert)}",
        lines=tuple(lines),
        facts=tuple(alert_facts(alert, severity=severity, site=site, business=business)),
        sections=(("The review now", excerpt(alert)),),
        link=safe_review_url(alert.url),
        footer=_footer(alert),
    )


def reminder_letter(reminder: Reminder) -> Letter:
    alert = reminder.alert
    site, business, severity, _ = who(alert)
    return Letter(
        subject=f"⏰ Still unanswered after {duration(reminder.waiting)}: {headline(alert)}",
        heading=f"⏰ Still unanswered: {headline(alert)}",
        lines=(waiting(reminder), f"Reply on the site, then `repwatch handle {alert.review_id}` if you answered elsewhere."),
        facts=tuple(alert_facts(alert, severity=severity, site=site, business=business)),
        sections=tuple(_review_sections(alert) + _draft_section(alert)),
        link=safe_review_url(alert.url),
        link_label="Reply on the site",
        footer=_footer(alert),
    )


def spike_letter(spike: Spike) -> Letter:
    count, usual = spike_facts(spike)
    source = visible_text(spike.source, single_line=True)
    return Letter(
        subject=f"📈 Negative review spike · {spike_scope(spike)}",
        heading=f"📈 Negative review spike · {spike_scope(spike)}",
        lines=(count, usual),
        items=tuple(_list_item(alert) for alert in spike.examples[:SPIKE_EXAMPLES_SHOWN]),
        footer=f"repwatch · {f'source {source}' if source else 'all sources'}",
    )


def summary_letter(summary: FloodSummary) -> Letter:
    lines = [f"By severity: {by_severity}"] if (by_severity := severities(summary)) else []
    if by_business := businesses(summary):
        lines.append(f"By business: {by_business}")
    items = [_list_item(alert) for alert in summary.items[:LIST_MAX]]
    left = not_listed(summary, len(items))
    if left > 0:
        items.append((f"…and {left} more ({SUMMARY_COMMAND})", None))
    return Letter(
        subject=summary_title(summary),
        heading=summary_title(summary),
        lines=tuple(lines),
        items=tuple(items),
        footer=f"repwatch · one email instead of {summary.count}",
    )


def health_letter(health: SourceHealth) -> Letter:
    title, lines = health_lines(health)
    return Letter(subject=title, heading=title, lines=tuple(lines), link=safe_review_url(health.url),
                  link_label="Open the page", footer="repwatch · source health")


LETTERS = Builders(alert=alert_letter, update=update_letter, reminder=reminder_letter, spike=spike_letter,
                   summary=summary_letter, health=health_letter)


def letter_text(letter: Letter) -> str:
    """The text/plain part."""
    out = [letter.heading, ""]
    out += letter.lines
    if letter.lines:
        out.append("")
    out += [f"{label}: {value}" for label, value in letter.facts]
    for label, text in letter.sections:
        out += ["", label, text]
    if letter.items:
        out.append("")
        out += [f"• {line}" + (f"\n  {link}" if link else "") for line, link in letter.items]
    if letter.link:
        out += ["", f"{letter.link_label}: {letter.link}"]
    if letter.footer:
        out += ["", "-- ", letter.footer]
    return "\n".join(out) + "\n"


def _html(text: str) -> str:
    return html.escape(text, quote=True).replace("\n", "<br>\n")


_MUTED = "color:#57606a"


def letter_html(letter: Letter) -> str:
    """The text/html part: CSS inline (mail clients drop <style>), every piece of text escaped."""
    out = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{_html(letter.subject)}</title></head>',
        '<body style="margin:0;padding:16px;font-family:-apple-system,\'Segoe UI\',Helvetica,Arial,sans-serif;'
        'font-size:15px;line-height:1.45;color:#1f2328;background:#ffffff">',
        f'<h1 style="font-size:19px;margin:0 0 12px">{_html(letter.heading)}</h1>',
    ]
    out += [f'<p style="margin:0 0 4px">{_html(line)}</p>' for line in letter.lines]
    if letter.facts:
        out.append('<table role="presentation" style="border-collapse:collapse;margin:12px 0">')
        out += [f'<tr><th style="text-align:left;vertical-align:top;padding:2px 12px 2px 0;{_MUTED};font-weight:600">'
                f'{_html(label)}</th><td style="padding:2px 0">{_html(value)}</td></tr>' for label, value in letter.facts]
        out.append("</table>")
    for label, text in letter.sections:
        out.append(f'<h2 style="font-size:15px;margin:16px 0 4px">{_html(label)}</h2>')
        out.append(f'<p style="margin:0">{_html(text)}</p>')
    if letter.items:
        out.append('<ul style="padding-left:20px;margin:12px 0">')
        for line, link in letter.items:
            opened = f' <a href="{_html(link)}">Open review</a>' if link else ""
            out.append(f'<li style="margin:0 0 6px">{_html(line)}{opened}</li>')
        out.append("</ul>")
    if letter.link:
        out.append(f'<p style="margin:16px 0"><a href="{_html(letter.link)}" style="display:inline-block;padding:8px 14px;'
                   f'background:#0969da;color:#ffffff;text-decoration:none;border-radius:6px">{_html(letter.link_label)}</a></p>')
    if letter.footer:
        out.append(f'<p style="margin:24px 0 0;font-size:12px;{_MUTED}">{_html(letter.footer)}</p>')
    out.append("</body></html>\n")
    return "\n".join(out)


def alert_email(letter: Letter, config: EmailConfig, now: datetime) -> EmailMessage:
    """multipart/alternative: text, then HTML. The subject is one line (no header can be injected from a review)."""
    sender = mailbox(config.sender)
    message = EmailMessage()
    message["Subject"] = fit_plain(visible_text(letter.subject, single_line=True), SUBJECT_MAX)
    message["From"] = sender
    message["To"] = [mailbox(address) for address in config.to]
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("alert", domain=sender.domain or "repwatch.invalid")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to the robot
    message.set_content(letter_text(letter), cte="quoted-printable")
    message.add_alternative(letter_html(letter), subtype="html", cte="quoted-printable")
    return message


class EmailNotifier(Notifier):
    """Email each alert and notice (update, reminder, spike, flood summary, source health) through an SMTP server.

        kind: email
        from: "repwatch <alerts@example.com>"
        to: [owner@example.com, "Manager <manager@example.com>"]
        smtp: {host: smtp.example.com, username: repwatch, password: "${SMTP_PASSWORD}"}

    One email per message, as text and HTML; the subject names the stars, the business and the site. smtp takes
    port (default 587 starttls, 465 ssl, 25 none), security (starttls | ssl | none) and timeout (30). A temporary
    refusal (4xx) or a lost connection is retried by the outbox; a permanent one (5xx) is not, nor is a timeout
    after the message was handed over (it may have arrived). The weekly digest keeps its own `digest:` section.
    """

    kind: ClassVar[str] = "email"
    Config: ClassVar[type[BaseModel]] = EmailConfig
    config: EmailConfig

    def send(self, alert: Alert, target: Target = Target()) -> SendResult:
        # `target` does not apply: no channels, threads or pings in email.
        return self._mail(alert_letter(alert))

    def send_notice(self, notice: AlertUpdate | Reminder | Spike | FloodSummary | SourceHealth,
                    target: Target = Target()) -> SendResult:
        # Updates and reminders are new emails; a summary lists its alerts.
        return self._mail(LETTERS.build(notice))

    def _mail(self, letter: Letter) -> SendResult:
        message = alert_email(letter, self.config, datetime.now(UTC))
        # Recipients the server refused while it took the rest are not retried: the others already have it.
        send_email(message, self.config.smtp, settings_path=f"notifiers.{self.name}.smtp")
        return SendResult(remote_id=message["Message-ID"])
