"""`repwatch slack-listen`: the Socket Mode connection to Slack that answers the alerts' work buttons (no public URL)."""
from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse

from models.textsafe import terminal_safe
from models.vocab import mask_secrets
from monitor.config import Config
from monitor.service.errors import describe_error
from monitor.service.pipeline import open_sessions, send_due
from monitor.service.slack_actions import ACK_DEADLINE, SlackActions

PRUNE_EVERY = 6 * 3600.0  # seconds between forgetting old action receipts
# After Slack's `disconnect`, how long the old connection's reader may block in one recv. slack-sdk's built-in client
# replaces a connection only once the old socket is closed, and closing waits for that reader, whose socket has a
# fixed 3 s timeout: without this, each reconnect takes 3 s, during which new envelopes wait unread.
RELEASE_OLD_CONNECTION = 0.02  # seconds
# slack-sdk logs payloads at DEBUG: its clients log through this logger, kept at WARNING.
_SDK_LOGGER = logging.getLogger("monitor.listener.sdk")
_SDK_LOGGER.setLevel(logging.WARNING)


def stderr_line(message: str) -> None:
    sys.stderr.write(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z repwatch slack-listen: {message}\n")
    sys.stderr.flush()


class OutboxFlusher:
    """Sends what the clicks queued (thread replies, the other alerts' refreshes) in one background thread, so that a
    crawl holding the outbox lock never holds up an acknowledgement; many clicks meanwhile make one send."""

    def __init__(self, send: Callable[[], object], log: Callable[[str], None]):
        self._send = send
        self._log = log
        self._due = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-flusher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._due.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._due.wait()
            self._due.clear()
            if self._stop.is_set():
                return
            try:
                self._send()
            except Exception as exc:  # noqa: BLE001 - the next click or `repwatch deliver` tries again
                self._log(f"outbox: {describe_error(exc)}")

    def stop(self) -> None:
        self._stop.set()
        self._due.set()


class Listener:
    """One Socket Mode client (slack-sdk's built-in one: it reconnects on Slack's `disconnect` and on a dropped
    connection by itself) whose interactive envelopes go to SlackActions."""

    def __init__(self, config: Config, *, log: Callable[[str], None] = stderr_line):
        settings = config.slack_actions
        if settings is None or settings.app_token is None:
            raise ValueError("slack_actions.app_token is not set: Socket Mode needs the app-level token (xapp-…)")
        self.config = config
        self.log = log
        self.sessions = open_sessions(config)
        self.flusher = OutboxFlusher(lambda: send_due(config, self.sessions), log)
        self.actions = SlackActions(config, self.sessions, log=log, wake_outbox=self.flusher.wake)
        self._app_token = settings.app_token.get_secret_value().strip()
        web = WebClient(base_url=self.actions.notifier.config.api_url, timeout=10, retry_handlers=[],
                        logger=_SDK_LOGGER)
        self.client = SocketModeClient(app_token=self._app_token, web_client=web, logger=_SDK_LOGGER,
                                       auto_reconnect_enabled=True, concurrency=4)
        # The raw message listener, not the request listener: slack-sdk drops an envelope whose payload is not an
        # object before a request listener sees it, and it would never be acknowledged.
        self.client.message_listeners.append(self._on_envelope)  # type: ignore[arg-type]
        self.client.on_message_listeners.append(self._on_message)
        self.connected = threading.Event()
        self.hellos = 0
        self._reading: Any = None  # the slack-sdk connection being read (the one whose hello came last)
        self.last_hello: float | None = None
        self.last_disconnect: float | None = None

    def _on_message(self, raw: str) -> None:
        if '"hello"' not in raw[:80] and '"disconnect"' not in raw[:80]:
            return  # envelopes go to _on_request
        try:
            kind = json.loads(raw).get("type")
        except ValueError:
            return
        if kind == "hello":
            self._reading = self.client.current_session
            self.hellos += 1
            self.last_hello = time.monotonic()
            took = f" {self.last_hello - self.last_disconnect:.3f} s after Slack asked" if self.last_disconnect else ""
            self.log(f"connected to Slack (connection {self.hellos}){took}")
            self.connected.set()
        elif kind == "disconnect":
            self.last_disconnect = time.monotonic()
            self.log("Slack asked for a new connection: reconnecting")
            self._release(self._reading or self.client.current_session)

    @staticmethod
    def _release(connection: Any) -> None:
        """Let slack-sdk close the connection Slack asked us to leave within milliseconds, not 3 s: this listener
        runs in that connection's reader thread, between two recv calls, so the next recv waits only
        RELEASE_OLD_CONNECTION. Whatever Slack still sends on it is read meanwhile; an envelope it cannot deliver
        unacknowledged is redelivered on the new connection (the receipts dedupe it)."""
        sock = getattr(connection, "sock", None)
        if sock is not None:
            try:
                sock.settimeout(RELEASE_OLD_CONNECTION)
            except OSError:
                pass  # closed already

    def _on_envelope(self, client: SocketModeClient, message: dict[str, Any], raw: str | None) -> None:
        """Apply (a few database rows), then acknowledge, then answer in Slack. The acknowledgement goes out within
        ACK_DEADLINE whatever the database does (see monitor/service/slack_actions.py)."""
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        if not isinstance(envelope_id, str) or not envelope_id:
            return  # hello, disconnect: not envelopes
        request = _Envelope(str(message.get("type")), envelope_id, message.get("payload"))
        acked = threading.Lock()
        sent = [False]

        def ack(payload: dict[str, Any] | None) -> None:
            with acked:
                if sent[0]:
                    return
                sent[0] = True
            try:
                client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id, payload=payload))
            except SlackClientError as exc:  # the connection went away: Slack redelivers, the receipt dedupes
                self.log(f"could not acknowledge an envelope: {type(exc).__name__}")

        if request.type != "interactive":
            ack(None)  # events and commands are not ours: acknowledged so that Slack does not retry them
            return
        timer = threading.Timer(ACK_DEADLINE, ack, (None,))
        timer.daemon = True
        timer.start()
        try:
            answer = self.actions.handle(request.payload, envelope_id=request.envelope_id)
        except Exception as exc:  # noqa: BLE001 - nothing was committed (one transaction); the clicker may retry
            timer.cancel()
            ack(None)
            self.log(f"error: {mask_secrets(describe_error(exc), self._app_token)}")
            return
        timer.cancel()
        ack(answer.ack)
        if answer.summary:
            self.log(answer.summary)
        answer.then()

    def start(self) -> None:
        """Connect (raises SlackApiError when Slack refuses the app token)."""
        self.client.connect()

    def close(self) -> None:
        # slack-sdk's close waits for the reader's recv (up to 3 s): shut the socket so that it returns at once;
        # an envelope not yet acknowledged is redelivered by Slack to the next connection.
        self.client.auto_reconnect_enabled = False
        sock = getattr(self.client.current_session, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed already
        self.client.close()
        self.flusher.stop()

    def serve(self, stop: threading.Event) -> int:
        """Until `stop` is set (SIGTERM/SIGINT): stay connected; forget old receipts now and then."""
        try:
            self.start()
        except SlackApiError as exc:
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            self.log(f"Slack refused the app token ({terminal_safe(str(error))}): check slack_actions.app_token "
                     "(an xapp- token with the connections:write scope) and that Socket Mode is on")
            self.close()
            return 1
        except (OSError, SlackClientError) as exc:
            self.log(f"cannot reach Slack ({type(exc).__name__}); retrying on its own")
        pruned_at = 0.0
        try:
            while not stop.wait(timeout=1.0):
                if time.monotonic() - pruned_at > PRUNE_EVERY:
                    pruned_at = time.monotonic()
                    try:
                        self.actions.prune_receipts()
                    except Exception as exc:  # noqa: BLE001 - a busy database: next time
                        self.log(f"could not prune old receipts: {describe_error(exc)}")
                if not self.client.is_connected() and self.client.current_session is None:
                    try:
                        self.client.connect_to_new_endpoint()
                    except (OSError, SlackClientError) as exc:
                        self.log(f"cannot reach Slack ({type(exc).__name__}); retrying")
        finally:
            self.close()
            self.log("stopped")
        return 0


class _Envelope:
    def __init__(self, kind: str, envelope_id: str, payload: Any):
        self.type, self.envelope_id, self.payload = kind, envelope_id, payload


def serve(config: Config, *, log: Callable[[str], None] = stderr_line) -> int:
    """`repwatch slack-listen`: run until SIGTERM/SIGINT; exit 0 after a clean stop, 1 when Slack refuses the token."""
    listener = Listener(config, log=log)
    stop = threading.Event()
    handlers = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        log(f"started: Socket Mode for the buttons of notifier {listener.actions.notifier_name!r}, "
            f"allow: {config.slack_actions.allow if config.slack_actions else '?'}")
        return listener.serve(stop)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
