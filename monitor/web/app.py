"""The team inbox as a web app (Starlette): requests → monitor.service calls → server-rendered pages."""
from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.vocab import OPEN_STATUSES, REVIEW_STATUSES
from monitor.config import Config
from monitor.service import google, users, work
from monitor.service import inbox as inbox_service
from monitor.service import reviews as reviews_service
from monitor.service.work import Actor, NoSuchReview, WorkError
from monitor.web import views
from monitor.web.security import (
    COOKIE,
    CookieCodec,
    LoginThrottle,
    Proxies,
    WebSession,
    local_path,
    secret_key,
)

HERE = Path(__file__).resolve().parent
# Pages load nothing from elsewhere and run no inline script or style; no site may frame them.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}
MAX_FORM_FIELD = 64 * 1024  # bytes in one form field: a draft is at most 8,000 characters
SNOOZE = timedelta(days=1)  # the review page's "Snooze 1 day", as the Slack button

SlackActions = Callable[[Request], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, "Visitor"], Awaitable[Response]]


@dataclass
class Visitor:
    """The request's session and, when logged in, the person."""

    session: WebSession
    person: users.Person | None
    address: str
    https: bool

    @property
    def actor(self) -> Actor:
        assert self.person is not None
        return Actor(self.person.name, "web")


class SecurityHeaders:
    """Every response (pages, static files, errors) gets the headers above; pages are never cached."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                if not scope["path"].startswith("/static/") and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Inbox:
    """The app's state and handlers: one per process (config, database, cookie key, login throttle)."""

    def __init__(self, config: Config, sessions: sessionmaker[Session], *, clock: Callable[[], datetime] | None = None,
                 slack_actions: SlackActions | None = None):
        self.config = config
        self.sessions = sessions
        self.clock = clock or (lambda: datetime.now(UTC))
        settings = config.web
        configured = settings.secret_key.get_secret_value() if settings.secret_key else None
        self.codec = CookieCodec(secret_key(configured, config.data_dir), settings.session_lifetime)
        self.throttle = LoginThrottle(self.clock)
        # Logins ended by "Log out", until they would have expired anyway: a copy of the cookie kept elsewhere
        # must not outlive the logout. In memory (a restart forgets it; the cookie still expires).
        self.logged_out: dict[str, float] = {}
        self._logged_out_lock = threading.Lock()
        self.proxies = Proxies(settings.trusted_proxies)
        self.slack_actions = slack_actions
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,  # every template, whatever its name: review text is hostile
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        views.install_filters(self.templates, self.clock)

    # -- plumbing

    def visitor(self, request: Request) -> Visitor:
        peer = request.client.host if request.client else None
        session = self.codec.loads(request.cookies.get(COOKIE), self.clock())
        person = None
        if session.user_id is not None and session.csrf in self.logged_out:
            session = WebSession(changed=True)
        if session.user_id is not None:
            person = users.person(self.sessions, session.user_id)
            if person is None or person.session_epoch != session.epoch or not person.can_log_in:
                session = WebSession(changed=True)  # removed, or the password was reset: that login is over
                person = None
        https = self.proxies.scheme(peer, request.url.scheme, request.headers) == "https"
        return Visitor(session, person, self.proxies.client(peer, request.headers), https)

    def finish(self, response: Response, visitor: Visitor) -> Response:
        if visitor.session.changed:
            response.set_cookie(COOKIE, self.codec.dumps(visitor.session), httponly=True, samesite="lax",
                                secure=visitor.https, path="/",
                                max_age=int(self.config.web.session_lifetime.total_seconds()))
        return response

    def page(self, visitor: Visitor, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(
            me=visitor.person, csrf=visitor.session.csrf, flash=visitor.session.take_flash(), **context)
        return HTMLResponse(html, status_code=status_code)

    def redirect(self, visitor: Visitor, url: str) -> Response:
        return self.finish(RedirectResponse(url, status_code=303), visitor)

    async def form(self, request: Request, visitor: Visitor) -> FormData:
        """The posted form, once its CSRF token matched the session's (403 otherwise: nothing done)."""
        form = await request.form(max_files=0, max_fields=50, max_part_size=MAX_FORM_FIELD)
        if not visitor.session.csrf_ok(form.get("csrf")):
            raise HTTPException(403, "This form is out of date or came from another site: nothing was changed. "
                                     "Go back, reload the page and try again.")
        return form

    # -- login

    async def login_page(self, request: Request) -> Response:
        visitor = await run_in_threadpool(self.visitor, request)
        target = local_path(request.query_params.get("next"))
        if visitor.person is not None:
            return self.redirect(visitor, target)
        return self.finish(self.page(visitor, "login.html", next=target, name="", error=None), visitor)

    async def login(self, request: Request) -> Response:
        visitor = await run_in_threadpool(self.visitor, request)
        form = await self.form(request, visitor)
        name, password = str(form.get("name", ""))[:100], str(form.get("password", ""))
        target = local_path(str(form.get("next", "")))
        wait = self.throttle.wait(name, visitor.address)
        if wait is not None:
            minutes = max(1, round(wait.total_seconds() / 60))
            return self.finish(self.page(visitor, "login.html", 429, next=target, name=name, error=(
                f"Too many failed logins: try again in {minutes} minute{'s' if minutes != 1 else ''}.")), visitor)
        person = await run_in_threadpool(users.authenticate, self.sessions, name, password)
        if person is None:
            self.throttle.failed(name, visitor.address)
            return self.finish(self.page(visitor, "login.html", 401, next=target, name=name,
                                         error="Wrong name or password."), visitor)
        self.throttle.succeeded(name)
        # A new session (and CSRF token) at login: a token planted before it is worth nothing after.
        visitor.session = WebSession(user_id=person.id, epoch=person.session_epoch, issued=self.clock().timestamp(),
                                     changed=True)
        return self.redirect(visitor, target)

    async def logout(self, request: Request) -> Response:
        visitor = await run_in_threadpool(self.visitor, request)
        await self.form(request, visitor)
        now = self.clock().timestamp()
        with self._logged_out_lock:
            for token, until in list(self.logged_out.items()):
                if until < now:
                    del self.logged_out[token]
            self.logged_out[visitor.session.csrf] = visitor.session.issued + self.codec.lifetime.total_seconds()
        visitor.session = WebSession(changed=True)
        visitor.session.say("You are logged out.")
        return self.redirect(visitor, "/login")

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    # -- the pages

    async def inbox_page(self, request: Request, visitor: Visitor) -> Response:
        params = request.query_params
        form = views.InboxForm.from_params(params, me=visitor.person.name if visitor.person else "")
        error = None
        try:
            page = await run_in_threadpool(functools.partial(inbox_service.inbox, self.sessions, self.config,
                                                             form.query(), now=self.clock()))
        except inbox_service.InboxError as exc:
            error = str(exc)
            page = await run_in_threadpool(functools.partial(inbox_service.inbox, self.sessions, self.config,
                                                             inbox_service.InboxQuery(), now=self.clock()))
        people = await run_in_threadpool(users.list_users, self.sessions)
        return self.page(visitor, "inbox.html", form=form, result=page, error=error, groups=views.incident_groups(page.rows),
                         people=people, businesses=[b.name for b in self.config.businesses],
                         page_url=functools.partial(views.page_url, params))

    async def review_page(self, request: Request, visitor: Visitor) -> Response:
        review_id = int(request.path_params["review_id"])
        detail = await run_in_threadpool(functools.partial(inbox_service.review_detail, self.sessions, self.config,
                                                           review_id, now=self.clock()))
        people = await run_in_threadpool(users.list_users, self.sessions)
        return self.page(visitor, "review.html", review=detail, people=people, statuses=REVIEW_STATUSES,
                         open_statuses=OPEN_STATUSES, posts_to_google=detail.kind == google.KIND)

    async def dashboard_page(self, request: Request, visitor: Visitor) -> Response:
        businesses = [b.name for b in self.config.businesses]
        wanted = request.query_params.get("business") or (businesses[0] if businesses else "")
        if wanted not in businesses:
            return self.page(visitor, "error.html", 404, title="Not found",
                             message=f"No business {wanted!r} in the config." if wanted else "No business is configured.")
        board = await run_in_threadpool(functools.partial(inbox_service.dashboard, self.sessions, self.config, wanted,
                                                          now=self.clock()))
        return self.page(visitor, "dashboard.html", board=board, businesses=businesses,
                         chart=views.week_chart(board.weeks))

    # -- people (owners)

    async def people_page(self, request: Request, visitor: Visitor) -> Response:
        people = await run_in_threadpool(users.list_users, self.sessions)
        return self.page(visitor, "people.html", people=people)

    async def people_change(self, request: Request, visitor: Visitor) -> Response:
        form = await self.form(request, visitor)
        what = request.path_params["what"]
        name = str(form.get("name", ""))
        password = str(form.get("password", ""))
        try:
            if what == "add":
                added = await run_in_threadpool(users.add_user, self.sessions, name, str(form.get("role", "member")),
                                                password)
                visitor.session.say(f"Added {added.name} ({added.role}).")
            elif what == "remove":
                removed = await run_in_threadpool(users.remove_user, self.sessions, name)
                visitor.session.say(f"Removed {removed.name}: their sessions have ended.")
            elif what == "reset-password":
                changed = await run_in_threadpool(users.reset_password, self.sessions, name, password)
                visitor.session.say(f"New password for {changed.name}: their other sessions have ended.")
                if visitor.person is not None and changed.id == visitor.person.id:
                    visitor.session.epoch = changed.session_epoch  # this session goes on
                    visitor.session.changed = True
            else:
                raise HTTPException(404)
        except users.UserError as exc:
            visitor.session.say(f"Not done: {exc}")
        return RedirectResponse("/people", status_code=303)

    # -- acting on a review

    async def act(self, request: Request, visitor: Visitor) -> Response:
        review_id = int(request.path_params["review_id"])
        action = request.path_params["action"]
        form = await self.form(request, visitor)
        seen = _int(form.get("seen_version"))
        actor = visitor.actor
        try:
            if action == "assign":
                to = str(form.get("to", "me"))
                outcome = await run_in_threadpool(functools.partial(
                    work.assign, self.sessions, review_id, actor, to=actor.name if to == "me" else to,
                    check_user=True, seen_version=seen))
                done = f"Assigned to {outcome.assignee}." if outcome.assignee else "Nobody is assigned now."
            elif action == "status":
                status = str(form.get("status", ""))
                outcome = await run_in_threadpool(functools.partial(
                    work.set_status, self.sessions, review_id, status, actor,
                    note=str(form.get("note", "")).strip() or None, seen_version=seen))
                done = f"Marked {views.status_word(outcome.status)}."
            elif action == "note":
                outcome = await run_in_threadpool(work.add_note, self.sessions, review_id, str(form.get("text", "")),
                                                  actor)
                done = "Note added."
            elif action == "draft":
                outcome = await run_in_threadpool(functools.partial(
                    work.save_draft, self.sessions, review_id, str(form.get("text", "")), actor, seen_version=seen))
                done = "Draft saved." if outcome.changed else "The draft was already this text."
                if form.get("then") == "google" and not outcome.stale:
                    # "Post this reply on Google…": the text is saved first, then the confirmation shows it
                    if outcome.changed:
                        visitor.session.say(done)
                    return RedirectResponse(f"/reviews/{review_id}/google-reply", status_code=303)
            elif action == "snooze":
                now = datetime.now(UTC)
                outcome = await run_in_threadpool(functools.partial(
                    work.snooze, self.sessions, review_id, SNOOZE, actor, now=now))
                done = f"Reminder snoozed until {views.when(now + SNOOZE)}."
            else:
                raise HTTPException(404)
        except WorkError as exc:
            visitor.session.say(f"Not done: {exc}")
            return RedirectResponse(f"/reviews/{review_id}", status_code=303)
        if len(outcome.reviews) > 1 and action in ("assign", "status"):
            done += f" (all {len(outcome.reviews)} posts of this incident)"
        if outcome.stale:
            meanwhile = await run_in_threadpool(self.meanwhile, review_id, seen or 0, actor)
            visitor.session.say("Someone changed this review meanwhile: " + (meanwhile or "see the trail below")
                                + f". Your change was applied after theirs; the trail shows both. {done}")
        else:
            visitor.session.say(done)
        return RedirectResponse(f"/reviews/{review_id}", status_code=303)

    # -- posting the draft on Google (google_business reviews), behind a confirmation

    def google_draft(self, review_id: int) -> tuple[google.ReplyTarget, str]:
        """The review and the draft a Google reply would post; CannotPost for other sites, GoogleError when the
        draft is empty or too long."""
        target = google.reply_target(self.config, review_id, sessions=self.sessions)
        draft = reviews_service.draft_reply(self.config, review_id, sessions=self.sessions)
        return target, google.check_reply_text(draft)

    async def google_reply_page(self, request: Request, visitor: Visitor) -> Response:
        review_id = int(request.path_params["review_id"])
        try:
            target, text = await run_in_threadpool(self.google_draft, review_id)
        except google.CannotPost as exc:
            return self.page(visitor, "error.html", 400, title="Not a Google review", message=str(exc))
        except google.GoogleError as exc:
            visitor.session.say(f"Not posted: {exc}")
            return RedirectResponse(f"/reviews/{review_id}", status_code=303)
        return self.page(visitor, "google_reply.html", target=target, text=text, digest=_digest(text))

    async def google_reply(self, request: Request, visitor: Visitor) -> Response:
        """The confirmation's [Post]: the draft it showed (unchanged since) goes to Google, then the review is
        recorded as replied. Any refusal is one line on the review's page, and nothing recorded."""
        review_id = int(request.path_params["review_id"])
        form = await self.form(request, visitor)
        back = RedirectResponse(f"/reviews/{review_id}", status_code=303)
        try:
            _, text = await run_in_threadpool(self.google_draft, review_id)
            if _digest(text) != str(form.get("digest", "")):
                visitor.session.say("Not posted: the draft changed after the confirmation was shown. Check it and "
                                    "post again.")
                return back
            recorded = await run_in_threadpool(functools.partial(
                google.reply_and_record, self.config, review_id, text, visitor.actor, sessions=self.sessions))
        except google.GoogleError as exc:
            visitor.session.say(f"Not posted: {exc}")
            return back
        also = f" (all {len(recorded.outcome.reviews)} posts of this incident)" if len(recorded.outcome.reviews) > 1 else ""
        visitor.session.say(f"Reply posted on Google as the business's public reply; marked replied{also}.")
        return back

    def meanwhile(self, review_id: int, seen_version: int, actor: Actor) -> str:
        """The trail entries between the version the form showed and this action (this action's own left out)."""
        events = work.review_events(self.sessions, review_id)
        others = [e for e in events[seen_version:] if not (e.stale and e.actor == actor.name and e.via == actor.via)]
        return "; ".join(views.describe_event(e) for e in others[-5:])

    # -- who may see what

    def member(self, handler: Handler) -> Endpoint:
        """A page for logged-in people: anybody else goes to /login?next=<this page>."""
        async def endpoint(request: Request) -> Response:
            visitor = await run_in_threadpool(self.visitor, request)
            if visitor.person is None:
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                target = here if request.method == "GET" else "/"
                return self.redirect(visitor, "/login?" + urlencode({"next": target}))
            try:
                response = await handler(request, visitor)
            except NoSuchReview as exc:
                response = self.page(visitor, "error.html", 404, title="Not found", message=str(exc))
            return self.finish(response, visitor)

        return endpoint

    def owner(self, handler: Handler) -> Endpoint:
        """A page for owners only (managing people)."""
        async def only_owners(request: Request, visitor: Visitor) -> Response:
            assert visitor.person is not None
            if visitor.person.role != "owner":
                return self.page(visitor, "error.html", 403, title="Owners only",
                                 message="Only an owner manages people: ask an owner of this repwatch.")
            return await handler(request, visitor)

        return self.member(only_owners)


def error_page(inbox: Inbox) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        visitor = await run_in_threadpool(inbox.visitor, request)
        titles = {403: "Refused", 404: "Not found", 405: "Not allowed"}
        message = exc.detail if exc.status_code != 404 else "There is no such page."
        return inbox.finish(inbox.page(visitor, "error.html", exc.status_code,
                                       title=titles.get(exc.status_code, "Error"), message=message), visitor)

    return handle


def create_app(config: Config, sessions: sessionmaker[Session], *, clock: Callable[[], datetime] | None = None,
               slack_actions: SlackActions | None = None) -> Starlette:
    """The inbox app for `config`'s database; `clock` for tests (login expiry, waited times)."""
    inbox = Inbox(config, sessions, clock=clock, slack_actions=slack_actions)
    routes = [
        Route("/healthz", inbox.healthz),
        Route("/login", inbox.login_page, methods=["GET"]),
        Route("/login", inbox.login, methods=["POST"]),
        Route("/logout", inbox.logout, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
        Route("/", inbox.member(inbox.inbox_page), methods=["GET"]),
        Route("/reviews/{review_id:int}", inbox.member(inbox.review_page), methods=["GET"]),
        Route("/reviews/{review_id:int}/google-reply", inbox.member(inbox.google_reply_page), methods=["GET"]),
        Route("/reviews/{review_id:int}/google-reply", inbox.member(inbox.google_reply), methods=["POST"]),
        Route("/reviews/{review_id:int}/{action:str}", inbox.member(inbox.act), methods=["POST"]),
        Route("/dashboard", inbox.member(inbox.dashboard_page), methods=["GET"]),
        Route("/people", inbox.owner(inbox.people_page), methods=["GET"]),
        Route("/people/{what:str}", inbox.owner(inbox.people_change), methods=["POST"]),
    ]
    # --- Slack interactivity (issue 15) -------------------------------------------------------------------
    # Slack's "Request URL" for buttons: the Slack helper's handler is mounted here at merge, as
    # `create_app(..., slack_actions=<its handler>)`. It checks Slack's signature itself, so it takes no session and
    # no CSRF token.
    if slack_actions is not None:
        routes.append(Route("/slack/actions", slack_actions, methods=["POST"]))
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)],
                    exception_handlers={HTTPException: error_page(inbox)})
    app.state.inbox = inbox
    return app


def _digest(text: str) -> str:
    """Names the text a confirmation showed: what is posted must be that text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
