"""Email over SMTP (smtplib): the `digest:` settings, sending one message, and SMTP failures as DeliveryErrors."""
from __future__ import annotations

import io
import ipaddress
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from alerts.base import DeliveryError
from models.vocab import Strict

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


class DigestSettings(Strict):
    """The weekly digest email: who gets it and the SMTP server that sends it."""

    # `config show` prints the key as written (`from`), not the Python name.
    model_config = ConfigDict(**Strict.model_config, serialize_by_alias=True)

    sender: str = Field(alias="from", description='e.g. "repwatch <repwatch@example.com>"')
    to: list[str] = Field(min_length=1)
    subject: str = Field("Reviews of {business}, week {week}", description="placeholders: {business}, {week}")
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


def classify_smtp_error(exc: BaseException, where: str) -> DeliveryError:
    """One smtplib/socket failure as a DeliveryError whose `retryable` follows the SMTP code, not the class.

    smtplib raises the same class for a 451 (try later) and a 550 (never): SMTPDataError, SMTPSenderRefused and
    SMTPAuthenticationError all carry `smtp_code`, which is what decides. SMTPRecipientsRefused has no code of its
    own, only one per recipient: retryable only when every refusal was transient.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = {rcpt: smtp_reply(code, reply) for rcpt, (code, reply) in exc.recipients.items()}
        retryable = bool(exc.recipients) and all(is_transient(code) for code, _ in exc.recipients.values())
        listed = "; ".join(f"{rcpt}: {reply}" for rcpt, reply in replies.items())
        return DeliveryError(f"{where}: every recipient refused ({listed})", retryable=retryable)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        hint = "" if is_transient(exc.smtp_code) else " (check digest.smtp.username and password)"
        return DeliveryError(
            f"{where}: login refused: {smtp_reply(exc.smtp_code, exc.smtp_error)}{hint}", retryable=is_transient(exc.smtp_code)
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return DeliveryError(f"{where}: {smtp_reply(exc.smtp_code, exc.smtp_error)}", retryable=is_transient(exc.smtp_code))
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"{where}: {exc} (check digest.smtp.security)", retryable=False)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(f"{where}: the server's TLS certificate is not trusted ({exc.verify_message})", retryable=False)
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(
            f"{where}: TLS failed ({exc.reason or type(exc).__name__}); is digest.smtp.security right for this port?",
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


def send_email(message: EmailMessage, settings: SmtpSettings) -> EmailReport:
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
        error = classify_smtp_error(exc, where)
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
    smtp_class = smtplib.SMTP_SSL if settings.security == "ssl" else smtplib.SMTP
    kwargs = {"context": context} if settings.security == "ssl" else {}
    smtp = smtp_class(settings.host, settings.effective_port(), timeout=settings.timeout, **kwargs)
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
    if secret and len(secret) >= 3:
        text = text.replace(secret, "[redacted]")
    return text


def mailbox(value: str) -> Address:
    """A config address ("Name <a@b>" or "a@b") as a header Address."""
    name, address = parseaddr(value)
    return Address(display_name=name, addr_spec=address)
