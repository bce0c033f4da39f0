"""A local Slack-shaped HTTP server (Web API + incoming webhooks) that checks payloads as Slack would."""
from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from demo.slack_socket import SocketModeServer
from models.textsafe import terminal_safe

# Slack's Block Kit limits (docs.slack.dev reference pages), as the API enforces them.
MAX_BLOCKS = 50
MAX_TEXT = 40000
HEADER_TEXT_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
MAX_FIELDS = 10
CONTEXT_ELEMENTS_MAX = 10
ACTIONS_ELEMENTS_MAX = 25
BUTTON_TEXT_MAX = 75
URL_MAX = 3000
ACTION_ID_MAX = 255
BLOCK_ID_MAX = 255
KNOWN_BLOCK_TYPES = frozenset(
    {"section", "header", "context", "actions", "divider", "image", "rich_text", "input", "file", "video", "markdown"}
)
MAX_BODY_BYTES = 2_000_000


@dataclass
class _Fault:
    status: int
    error: str
    headers: dict[str, str]
    stall: bool = False


class SlackReceiver:
    """A Slack stand-in on 127.0.0.1 (OS-assigned port) answering as Slack does, for tests and the offline demo.

    with SlackReceiver(token="xoxb-demo") as slack:
        WebClient(token="xoxb-demo", base_url=slack.api_url).chat_postMessage(channel="#reviews", text="hi")
        WebhookClient(slack.webhook_url()).send(text="hi")
        slack.messages  # what was accepted
    """

    def __init__(self, *, token: str | None = None, channels: Collection[str] | None = None,
                 app_token: str | None = None):
        # token None: any xoxb-/xoxp- token is accepted. channels None: any channel exists.
        # app_token: Socket Mode (apps.connections.open with this xapp- token answers the local WebSocket server's URL)
        self.expected_token = token
        self.channels = set(channels) if channels is not None else None
        self.app_token = app_token
        self.socket: SocketModeServer | None = SocketModeServer() if app_token else None
        self.views: list[dict[str, Any]] = []  # views.open: the modals opened
        self.members: dict[str, list[str]] = {}  # conversations.members: channel id → member ids
        self.groups: dict[str, list[str]] = {}  # usergroups.users.list: group id → member ids
        self._lock = threading.RLock()
        self._stored = threading.Condition(self._lock)
        self._messages: list[dict[str, Any]] = []
        self._requests: list[dict[str, Any]] = []
        self._faults: deque[_Fault] = deque()
        self._hooks: dict[str, str] = {}  # webhook path -> channel
        self._ts = itertools.count(1)
        self._release = threading.Event()  # lets stalled requests finish on close
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> SlackReceiver:
        receiver = self

        class Handler(_Handler):
            pass

        Handler.receiver = receiver
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll keeps close() quick (shutdown waits for the loop to look at its flag).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-receiver", daemon=True
        )
        self._thread.start()
        if self.socket is not None:
            self.socket.start()
        return self

    def close(self) -> None:
        self._release.set()
        if self.socket is not None:
            self.socket.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SlackReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the receiver first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}api/"

    def response_url(self, name: str = "T000/1/abc") -> str:
        """A click's response_url: what is posted there is kept as a message of kind "response"."""
        return f"{self.base_url}actions/{name.strip('/')}"

    def channel_id(self, channel: str) -> str:
        """The id Slack answers for a channel name (as in chat.postMessage's answer)."""
        return _channel_id(channel)

    def webhook_url(self, name: str = "T000/B000/XXXX", *, channel: str = "#webhook") -> str:
        """The URL of an incoming webhook that posts to `channel`; other /services/ paths answer 404 no_service."""
        with self._lock:
            self._hooks[name.strip("/")] = channel
        return f"{self.base_url}services/{name.strip('/')}"

    # -- fault injection --------------------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 500, error: str = "internal_error") -> None:
        """The next `n` requests get `status` (with status 200: `{"ok": false, "error": error}`, as Slack does)."""
        self._add_faults(n, _Fault(status=status, error=error, headers={}))

    def rate_limit_next(self, n: int = 1, retry_after: str | None = "1") -> None:
        """The next `n` requests get HTTP 429 with this Retry-After header (None: no header)."""
        headers = {} if retry_after is None else {"Retry-After": retry_after}
        self._add_faults(n, _Fault(status=429, error="ratelimited", headers=headers))

    def stall_next(self, n: int = 1) -> None:
        """The next `n` requests get no answer until the receiver closes (for client timeouts)."""
        self._add_faults(n, _Fault(status=500, error="internal_error", headers={}, stall=True))

    def _add_faults(self, n: int, fault: _Fault) -> None:
        with self._lock:
            self._faults.extend([fault] * n)

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    # -- records ----------------------------------------------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted messages: kind ("post" | "update" | "webhook"), channel, ts, text, blocks, thread_ts."""
        with self._lock:
            return list(self._messages)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request: method, path, headers, body (parsed), status."""
        with self._lock:
            return list(self._requests)

    def _record_request(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(entry)

    def _store(self, message: dict[str, Any]) -> dict[str, Any]:
        with self._stored:
            self._messages.append(message)
            self._stored.notify_all()
        return message

    def wait_for(self, count: int, timeout: float = 15) -> list[dict[str, Any]]:
        """The accepted messages once there are at least `count` (TimeoutError after `timeout` seconds)."""
        with self._stored:
            if not self._stored.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(f"{len(self._messages)} messages, not {count}, within {timeout} s")
            return list(self._messages)

    def wait_for_update(self, ts: str, since: int = 0, timeout: float = 15) -> dict[str, Any]:
        """The first chat.update of the message `ts` among the messages from index `since` on."""
        def found() -> dict[str, Any] | None:
            return next((m for m in self._messages[since:] if m.get("kind") == "update" and m.get("ts") == ts), None)

        with self._stored:
            if not self._stored.wait_for(found, timeout):
                raise TimeoutError(f"no chat.update of ts {ts} within {timeout} s")
            message = found()
            assert message is not None
            return message

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    # -- Web API ----------------------------------------------------------------------------------------------

    def _api(self, method: str, headers: Mapping[str, str], params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        auth = headers.get("authorization", "")
        token = auth[len("Bearer "):].strip() if auth.startswith("Bearer ") else str(params.get("token") or "")
        if not token:
            return 200, {"ok": False, "error": "not_authed"}
        if method == "apps.connections.open":
            if not token.startswith("xapp-"):
                return 200, {"ok": False, "error": "not_allowed_token_type"}
            if self.socket is None or token != self.app_token:
                return 200, {"ok": False, "error": "invalid_auth"}
            return 200, {"ok": True, "url": self.socket.new_url()}
        if (self.expected_token is not None and token != self.expected_token) or not token.startswith(("xoxb-", "xoxp-")):
            return 200, {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            return 200, {"ok": True, "url": self.base_url, "team": "Demo", "user": "repwatch", "team_id": "T000",
                         "user_id": "U000", "bot_id": "B000"}
        if method == "chat.postMessage":
            return self._post_message(params)
        if method == "chat.update":
            return self._update_message(params)
        if method == "chat.postEphemeral":
            if not params.get("channel") or not params.get("user"):
                return 200, {"ok": False, "error": "channel_not_found" if not params.get("channel") else "user_not_found"}
            self._store({"kind": "ephemeral", "channel": _channel_id(str(params["channel"])), "ts": self._next_ts(),
                         "text": params.get("text"), "blocks": None, "thread_ts": None, "user": params["user"]})
            return 200, {"ok": True, "message_ts": self._next_ts()}
        if method == "views.open":
            view = params.get("view")
            if isinstance(view, str):
                view = json.loads(view)
            if not params.get("trigger_id") or not isinstance(view, dict):
                return 200, {"ok": False, "error": "invalid_arguments"}
            title = (view.get("title") or {}).get("text", "")
            errors = block_errors([b for b in view.get("blocks") or [] if b.get("type") != "input"])
            if view.get("type") != "modal" or not title or len(title) > 24 or errors:
                return 200, {"ok": False, "error": "invalid_arguments", "errors": errors}
            with self._lock:
                self.views.append({"trigger_id": params["trigger_id"], "view": view})
            return 200, {"ok": True, "view": {"id": f"V{len(self.views):08d}", **view}}
        if method == "conversations.members":
            members = self.members.get(str(params.get("channel")))
            if members is None:
                return 200, {"ok": False, "error": "channel_not_found"}
            return 200, {"ok": True, "members": members, "response_metadata": {"next_cursor": ""}}
        if method == "usergroups.users.list":
            users = self.groups.get(str(params.get("usergroup")))
            if users is None:
                return 200, {"ok": False, "error": "no_such_subteam"}
            return 200, {"ok": True, "users": users}
        return 404, {"ok": False, "error": "unknown_method"}

    def _post_message(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        channel = params.get("channel")
        if not channel:
            return 200, {"ok": False, "error": "channel_not_found"}
        if self.channels is not None and channel not in self.channels:
            return 200, {"ok": False, "error": "channel_not_found"}
        text, blocks, problem = _check_content(params)
        if problem:
            return 200, problem
        message = self._store({"kind": "post", "channel": _channel_id(channel), "ts": self._next_ts(), "text": text,
                               "blocks": blocks, "thread_ts": params.get("thread_ts")})
        return 200, {"ok": True, "channel": message["channel"], "ts": message["ts"], "message": _as_slack(message)}

    def _update_message(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        channel, ts = params.get("channel"), params.get("ts")
        if not channel:
            return 200, {"ok": False, "error": "channel_not_found"}
        with self._lock:
            known = any(m["channel"] == _channel_id(channel) and m["ts"] == ts for m in self._messages)
        if not known:
            return 200, {"ok": False, "error": "message_not_found"}
        text, blocks, problem = _check_content(params)
        if problem:
            return 200, problem
        message = self._store({"kind": "update", "channel": _channel_id(channel), "ts": ts, "text": text,
                               "blocks": blocks, "thread_ts": None})
        return 200, {"ok": True, "channel": message["channel"], "ts": ts, "text": text, "message": _as_slack(message)}

    # -- incoming webhooks ------------------------------------------------------------------------------------

    def _webhook(self, hook: str, params: dict[str, Any] | None) -> tuple[int, str]:
        with self._lock:
            channel = self._hooks.get(hook)
        if channel is None:
            return 404, "no_service"
        if params is None:
            return 400, "invalid_payload"
        text, blocks, problem = _check_content(params)
        if problem:
            return 400, problem["error"]
        self._store({"kind": "webhook", "channel": channel, "ts": self._next_ts(), "text": text, "blocks": blocks,
                     "thread_ts": params.get("thread_ts")})
        return 200, "ok"


def _channel_id(channel: str) -> str:
    """Slack answers with the channel id even when given a name."""
    if re.fullmatch(r"[CGD][A-Z0-9]{6,}", channel):
        return channel
    digest = hashlib.sha256(channel.lstrip("#").encode()).hexdigest().upper()
    return "C" + digest[:10]


def _as_slack(message: dict[str, Any]) -> dict[str, Any]:
    out = {"type": "message", "user": "U000", "bot_id": "B000", "text": message["text"] or "", "ts": message["ts"]}
    if message["blocks"]:
        out["blocks"] = message["blocks"]
    return out


# -- payload checks, as the real API makes them -------------------------------------------------------------------


def _check_content(params: Mapping[str, Any]) -> tuple[str | None, list[dict[str, Any]] | None, dict[str, Any] | None]:
    """(text, blocks, None) when Slack would accept them, else (…, …, {"ok": False, "error": …, "errors": […]})."""
    text = params.get("text")
    blocks = params.get("blocks")
    if isinstance(blocks, str):  # form-encoded posts carry blocks as a JSON string
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return None, None, {"ok": False, "error": "invalid_blocks_format"}
    if text is not None and not isinstance(text, str):
        text = str(text)
    if not text and not blocks:
        return None, None, {"ok": False, "error": "no_text"}
    if text and _units(text) > MAX_TEXT:
        return None, None, {"ok": False, "error": "msg_too_long"}
    if blocks is not None:
        errors = block_errors(blocks)
        if errors:
            return None, None, {"ok": False, "error": "invalid_blocks", "errors": errors,
                                "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]}}
    return text, blocks, None


def block_errors(blocks: Any) -> list[str]:
    """What Slack would object to in a `blocks` array (empty: valid as far as these checks go)."""
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    seen_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, dict):
            errors.append(f"must be an object [json-pointer:{where}]")
            continue
        kind = block.get("type")
        if kind not in KNOWN_BLOCK_TYPES:
            errors.append(f"unsupported type: {kind!r} [json-pointer:{where}/type]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or len(block_id) > BLOCK_ID_MAX:
                errors.append(f"invalid block_id [json-pointer:{where}/block_id]")
            elif block_id in seen_ids:
                errors.append(f"duplicate block_id {block_id!r} [json-pointer:{where}/block_id]")
            seen_ids.add(str(block_id))
        if kind == "header":
            errors += _text_errors(block.get("text"), f"{where}/text", HEADER_TEXT_MAX, plain_only=True)
        elif kind == "section":
            if block.get("text") is None and not block.get("fields"):
                errors.append(f"must provide either text or fields [json-pointer:{where}]")
            if block.get("text") is not None:
                errors += _text_errors(block["text"], f"{where}/text", SECTION_TEXT_MAX)
            fields = block.get("fields")
            if fields is not None:
                if not isinstance(fields, list) or not fields or len(fields) > MAX_FIELDS:
                    errors.append(f"fields must have 1 to {MAX_FIELDS} items [json-pointer:{where}/fields]")
                else:
                    for j, field in enumerate(fields):
                        errors += _text_errors(field, f"{where}/fields/{j}", FIELD_TEXT_MAX)
            if block.get("accessory") is not None:
                errors += _element_errors(block["accessory"], f"{where}/accessory")
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > CONTEXT_ELEMENTS_MAX:
                errors.append(f"elements must have 1 to {CONTEXT_ELEMENTS_MAX} items [json-pointer:{where}/elements]")
            else:
                for j, element in enumerate(elements):
                    if isinstance(element, dict) and element.get("type") == "image":
                        continue
                    errors += _text_errors(element, f"{where}/elements/{j}", SECTION_TEXT_MAX)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > ACTIONS_ELEMENTS_MAX:
                errors.append(f"elements must have 1 to {ACTIONS_ELEMENTS_MAX} items [json-pointer:{where}/elements]")
            else:
                for j, element in enumerate(elements):
                    errors += _element_errors(element, f"{where}/elements/{j}")
    return errors


def _units(text: str) -> int:
    """Length in UTF-16 code units (an emoji counts 2): the stricter of the counts Slack may apply."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _text_errors(obj: Any, where: str, max_len: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [f"must be a text object [json-pointer:{where}]"]
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if kind not in allowed:
        return [f"must be one of {', '.join(allowed)} [json-pointer:{where}/type]"]
    text = obj.get("text")
    errors = []
    if not isinstance(text, str) or not text:
        errors.append(f"must be more than 0 characters [json-pointer:{where}/text]")
    elif _units(text) > max_len:
        errors.append(f"must be less than {max_len + 1} characters [json-pointer:{where}/text]")
    if kind == "mrkdwn" and "emoji" in obj:
        errors.append(f"emoji is only allowed in plain_text [json-pointer:{where}/emoji]")
    if kind == "plain_text" and "verbatim" in obj:
        errors.append(f"verbatim is only allowed in mrkdwn [json-pointer:{where}/verbatim]")
    return errors


def _element_errors(element: Any, where: str) -> list[str]:
    if not isinstance(element, dict):
        return [f"must be an object [json-pointer:{where}]"]
    if element.get("type") != "button":
        return []  # other interactive elements are not used by repwatch; accepted as-is
    errors = _text_errors(element.get("text"), f"{where}/text", BUTTON_TEXT_MAX, plain_only=True)
    url = element.get("url")
    if url is not None and (not isinstance(url, str) or _units(url) > URL_MAX or not url):
        errors.append(f"must be less than {URL_MAX + 1} characters [json-pointer:{where}/url]")
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > ACTION_ID_MAX):
        errors.append(f"invalid action_id [json-pointer:{where}/action_id]")
    return errors


# -- HTTP ------------------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    receiver: SlackReceiver
    protocol_version = "HTTP/1.1"
    server_version = "SlackReceiver/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (quiet: tests and the demo print)
        pass

    def do_GET(self) -> None:
        self._answer_json(405, {"ok": False, "error": "method_not_allowed"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw = self._read_body()
        params = _parse_body(raw, headers.get("content-type", ""))
        entry: dict[str, Any] = {"method": "POST", "path": path, "headers": headers, "body": params}
        fault = self.receiver._take_fault()
        if fault is not None:
            if fault.stall:
                entry["status"] = None
                self.receiver._record_request(entry)
                self.receiver._release.wait(timeout=30)
                self.close_connection = True
                return
            entry["status"] = fault.status
            self.receiver._record_request(entry)
            if path.startswith("/services/"):
                error = "rate_limited" if fault.status == 429 else fault.error
                return self._answer_text(fault.status, error, fault.headers)
            return self._answer_json(fault.status, {"ok": False, "error": fault.error}, fault.headers)

        if path.startswith("/api/"):
            status, answer = self.receiver._api(path[len("/api/"):], headers, params or {})
            entry["status"] = status
            self.receiver._record_request(entry)
            return self._answer_json(status, answer)
        if path.startswith("/actions/"):  # a response_url
            entry["status"] = 200
            self.receiver._record_request(entry)
            body = params or {}
            self.receiver._store({"kind": "response", "channel": None, "ts": self.receiver._next_ts(),
                                  "text": body.get("text"), "blocks": body.get("blocks"), "thread_ts": None,
                                  "response_type": body.get("response_type")})
            return self._answer_text(200, "ok")
        if path.startswith("/services/"):
            status, text = self.receiver._webhook(path[len("/services/"):].strip("/"), params)
            entry["status"] = status
            self.receiver._record_request(entry)
            return self._answer_text(status, text)
        entry["status"] = 404
        self.receiver._record_request(entry)
        self._answer_text(404, "not_found")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, MAX_BODY_BYTES)) if length > 0 else b""

    def _answer_json(self, status: int, data: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
        self._answer(status, json.dumps(data).encode(), "application/json; charset=utf-8", headers)

    def _answer_text(self, status: int, text: str, headers: Mapping[str, str] | None = None) -> None:
        self._answer(status, text.encode(), "text/html", headers)

    def _answer(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _parse_body(raw: bytes, content_type: str) -> dict[str, Any] | None:
    """JSON, form-encoded or multipart bodies (as slack-sdk sends them) as a dict; None if unreadable."""
    kind = content_type.split(";")[0].strip().lower()
    try:
        if kind == "application/json":
            data = json.loads(raw.decode("utf-8") or "{}")
            return data if isinstance(data, dict) else None
        if kind == "application/x-www-form-urlencoded" or not kind:
            form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
            if "payload" in form:  # legacy webhook form: payload=<json>
                data = json.loads(form["payload"])
                return data if isinstance(data, dict) else None
            return form
        if kind == "multipart/form-data":
            message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
            return {part.get_param("name", header="content-disposition"): part.get_content()
                    for part in message.iter_parts()}
    except (ValueError, UnicodeDecodeError):
        return None
    return None


# -- rendering for a terminal ------------------------------------------------------------------------------------

# ANSI/VT escape sequences first (so their parameters go too), then any other control or bidi character.
_MRKDWN_LINK = re.compile(r"<([^<>|]+)\|([^<>]*)>")
_MRKDWN_BOLD = re.compile(r"(?<![^\s(])\*([^*\n]+)\*(?![^\s.,:;!?)])")
_MRKDWN_SPECIAL = re.compile(r"<(!here|!channel|!everyone|@[A-Z0-9]+|#[A-Z0-9]+|!subteam\^[A-Z0-9]+)(?:\|[^<>]*)?>")


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _shown(obj: Any) -> str:
    """A text object as Slack displays it: entities decoded, mrkdwn links and mentions in readable form."""
    if not isinstance(obj, Mapping):
        return ""
    text = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        text = _MRKDWN_SPECIAL.sub(lambda m: "@" + m.group(1).lstrip("!@#"), text)
        text = _MRKDWN_LINK.sub(lambda m: f"{_unescape(m.group(2))} ({_unescape(m.group(1))})", text)
        text = _MRKDWN_BOLD.sub(r"\1", text)
    return terminal_safe(_unescape(text))


def render_message(message: Mapping[str, Any], *, width: int = 100) -> str:
    """How a message reads in Slack, as plain terminal text (header, fields, text, context, buttons)."""
    lines: list[str] = [f"┌─ {terminal_safe(str(message.get('channel') or '?'))}  ts {message.get('ts') or '?'}"
                        f"  ({message.get('kind', 'post')})"]
    blocks = message.get("blocks") or []
    if not blocks:
        lines += _shown({"type": "mrkdwn", "text": message.get("text") or ""}).splitlines() or [""]
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(_shown(block.get("text")))
            lines.append("═" * min(width, max(8, len(lines[-1]))))
        elif kind == "section":
            if block.get("text"):
                lines += _shown(block["text"]).splitlines()
            fields = [_shown(f).replace("\n", ": ", 1).replace("\n", " ") for f in block.get("fields") or []]
            for left, right in itertools.zip_longest(fields[::2], fields[1::2], fillvalue=""):
                lines.append(f"{left:<{width // 2}}{right}".rstrip())
        elif kind == "context":
            parts = [_shown(e) for e in block.get("elements") or [] if isinstance(e, Mapping) and e.get("type") != "image"]
            lines.append("  · ".join(p.replace("\n", " ") for p in parts))
        elif kind == "actions":
            for element in block.get("elements") or []:
                label = _shown(element.get("text"))
                url = terminal_safe(str(element.get("url") or ""))
                lines.append(f"[ {label} ]" + (f" → {url}" if url else ""))
        elif kind == "divider":
            lines.append("─" * 20)
        else:
            lines.append(f"({terminal_safe(str(kind))} block)")
        lines.append("")
    if lines[-1] == "":
        lines.pop()
    return "\n".join(["│ " + line if i else line for i, line in enumerate(lines)] + ["└─"])


if __name__ == "__main__":  # python -m demo.slack_receiver: run one and print what arrives
    with SlackReceiver() as slack:
        print(f"Slack-shaped API at {slack.api_url}\nincoming webhook at {slack.webhook_url()}\nCtrl-C to stop")
        shown = 0
        try:
            while True:
                time.sleep(0.5)
                for message in slack.messages[shown:]:
                    print(render_message(message), flush=True)
                shown = len(slack.messages)
        except KeyboardInterrupt:
            pass
