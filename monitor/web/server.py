"""Serving the inbox: uvicorn on a socket bound before it starts (port 0 works), in the foreground or a thread."""
from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable
from datetime import datetime

import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from monitor.config import Config
from monitor.service.pipeline import open_sessions
from monitor.web.app import SlackActions, create_app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket: connections made from now on wait in its backlog until the server takes them, so a
    caller may connect as soon as this returns (no waiting for the server to say it started)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def slack_request_url(config: Config, sessions: sessionmaker[Session]) -> SlackActions | None:
    """POST /slack/actions (Slack's request URL for the alert buttons) when slack_actions.signing_secret is set."""
    settings = config.slack_actions
    if settings is None or settings.signing_secret is None:
        return None
    from monitor.service.slack_actions import SlackActions as Handler

    endpoint: SlackActions = Handler(config, sessions).starlette_endpoint()
    return endpoint


class WebServer:
    """The inbox on (host, port): `start()` serves it in a thread (for `repwatch run` and the tests),
    `serve_until_signal()` until SIGINT/SIGTERM (for `repwatch web`)."""

    def __init__(self, config: Config, *, host: str | None = None, port: int | None = None,
                 sessions: sessionmaker[Session] | None = None, clock: Callable[[], datetime] | None = None,
                 slack_actions: SlackActions | None = None):
        self.sessions = sessions or open_sessions(config)
        if slack_actions is None:
            slack_actions = slack_request_url(config, self.sessions)
        self.app = create_app(config, self.sessions, clock=clock, slack_actions=slack_actions)
        self.socket = bind(host or config.web.host, config.web.port if port is None else port)
        # proxy_headers off: uvicorn would otherwise believe X-Forwarded-* from 127.0.0.1 whatever the config says;
        # the app honours them only from web.trusted_proxies.
        self.server = uvicorn.Server(uvicorn.Config(self.app, proxy_headers=False, server_header=False,
                                                    access_log=False, log_level="warning", lifespan="off"))
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = self.socket.getsockname()[0]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def run(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.socket.close()

    def serve_until_signal(self) -> None:
        """`repwatch web`: serve until SIGINT or SIGTERM, then finish the requests under way and return (exit 0;
        uvicorn in the main thread would re-raise the signal and die of it)."""
        def stop(signum: int, frame: object) -> None:
            self.server.should_exit = True

        previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            assert self.thread is not None
            while self.thread.is_alive():
                self.thread.join(1.0)  # a bounded wait, so that the signal handler runs promptly
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def start(self) -> WebServer:
        self.thread = threading.Thread(target=self.run, name="repwatch-web", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
