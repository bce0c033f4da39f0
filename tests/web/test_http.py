"""The inbox over HTTP, as a browser would speak to it: logins, cookies, CSRF, the throttle, roles, stale forms."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import pytest

from models.tables import Review
from monitor.config import ConfigError, parse_config
from monitor.service.users import reset_password
from monitor.service.work import review_events
from monitor.web.server import WebServer
from tests.web.conftest import PASSWORDS, csrf_of, version_of, web_config


def cookie_header(response: httpx.Response) -> str:
    return "; ".join(v for k, v in response.headers.multi_items() if k.lower() == "set-cookie")


def test_every_page_but_login_and_healthz_sends_a_stranger_to_the_login_page(inbox):
    client = inbox.client()
    review = inbox.seeded.complaints[0]
    for path in ["/", "/dashboard", "/people", f"/reviews/{review}", "/?language=pl&status=all"]:
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/login?" + httpx.QueryParams({"next": path}).__str__()
    assert client.get("/healthz").text == "ok\n"
    assert client.get("/login").status_code == 200
    # A POST from a stranger changes nothing and goes to the login page too.
    refused = client.post(f"/reviews/{review}/status", data={"status": "resolved"})
    assert refused.status_code in (303, 403)
    with inbox.sessions() as session:
        assert session.get(Review, review).status == "new"


def test_login_gives_a_signed_httponly_lax_cookie_and_follows_next_only_to_this_site(inbox):
    client = inbox.client()
    page = client.get("/login?next=/dashboard")
    response = client.post("/login", data={"csrf": csrf_of(page.text), "name": "MAX", "password": PASSWORDS["max"],
                                           "next": "/dashboard"})
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    cookie = cookie_header(response).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie  # plain http here
    assert client.get("/dashboard").status_code == 200
    # A forged cookie is nobody's.
    forged = inbox.client()
    forged.cookies.set("repwatch_session", client.cookies["repwatch_session"][:-3] + "AAA")
    assert forged.get("/").status_code == 303
    for target in ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"]:
        other = inbox.client()
        page = other.get("/login")
        answer = other.post("/login", data={"csrf": csrf_of(page.text), "name": "max",
                                             "password": PASSWORDS["max"], "next": target})
        assert answer.headers["location"] == "/", target


def test_wrong_passwords_are_refused_and_the_throttle_stops_a_guesser_per_name_and_per_address(tmp_path, sessions):
    from tests.web.conftest import add_people, seed

    seed(sessions, datetime.now(UTC))
    add_people(sessions)
    url = str(sessions.kw["bind"].url.render_as_string(hide_password=False))
    config = web_config(tmp_path, url, trusted_proxies='["127.0.0.1/32"]')
    with WebServer(config, sessions=sessions) as server:
        def attempt(name: str, password: str, address: str) -> httpx.Response:
            client = httpx.Client(base_url=server.url, headers={"x-forwarded-for": address})
            page = client.get("/login")
            return client.post("/login", data={"csrf": csrf_of(page.text), "name": name, "password": password})

        wrong = attempt("max", "not the password", "10.0.0.1")
        assert wrong.status_code == 401 and "Wrong name or password." in wrong.text
        for n in range(2, 6):
            assert attempt("max", "guess", f"10.0.0.{n}").status_code == 401
        # Five failures for max from five addresses: now even his right password waits, from anywhere.
        locked = attempt("max", PASSWORDS["max"], "10.0.0.9")
        assert locked.status_code == 429 and "Too many failed logins: try again in 15 minutes." in locked.text
        assert attempt("nina", PASSWORDS["nina"], "10.0.0.9").status_code == 303  # others are not locked out
        # Five failures from one address, on any names: that address waits, for every name.
        for n in range(5):
            assert attempt(f"someone{n}", "guess", "10.0.0.20").status_code == 401
        assert attempt("nina", PASSWORDS["nina"], "10.0.0.20").status_code == 429
        assert attempt("nina", PASSWORDS["nina"], "10.0.0.21").status_code == 303


def test_logout_ends_the_session_even_for_a_copy_of_the_cookie(inbox):
    client = inbox.login("max")
    copy = inbox.client()
    copy.cookies.set("repwatch_session", client.cookies["repwatch_session"])
    page = client.get("/")
    response = client.post("/logout", data={"csrf": csrf_of(page.text)})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert "You are logged out." in client.get("/login").text
    assert client.get("/").status_code == 303
    assert copy.get("/").status_code == 303


def test_sessions_expire_and_a_password_reset_ends_them(tmp_path, sessions):
    from tests.web.conftest import add_people, seed

    seed(sessions, datetime.now(UTC))
    add_people(sessions)
    now = [datetime.now(UTC)]
    url = str(sessions.kw["bind"].url.render_as_string(hide_password=False))
    config = web_config(tmp_path, url, session_lifetime="12h")
    with WebServer(config, sessions=sessions, clock=lambda: now[0]) as server:
        inbox = httpx.Client(base_url=server.url)
        page = inbox.get("/login")
        inbox.post("/login", data={"csrf": csrf_of(page.text), "name": "max", "password": PASSWORDS["max"]})
        assert inbox.get("/").status_code == 200
        now[0] += timedelta(hours=11)
        assert inbox.get("/").status_code == 200
        now[0] += timedelta(hours=2)
        assert inbox.get("/").status_code == 303  # 13 h after the login

        other = httpx.Client(base_url=server.url)
        page = other.get("/login")
        other.post("/login", data={"csrf": csrf_of(page.text), "name": "nina", "password": PASSWORDS["nina"]})
        assert other.get("/").status_code == 200
        reset_password(sessions, "nina", "a-brand-new-password")
        assert other.get("/").status_code == 303


def test_secure_cookies_behind_an_https_proxy_only_when_the_proxy_is_trusted(tmp_path, sessions):
    url = str(sessions.kw["bind"].url.render_as_string(hide_password=False))
    for trusted, secure in (("[]", False), ('["127.0.0.0/8"]', True)):
        config = web_config(tmp_path, url, trusted_proxies=trusted)
        with WebServer(config, sessions=sessions) as server:
            response = httpx.get(f"{server.url}/login", headers={"x-forwarded-proto": "https"})
            assert ("secure" in cookie_header(response).lower()) is secure


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(inbox):
    client = inbox.login("max")
    review = inbox.seeded.complaints[0]
    page = client.get(f"/reviews/{review}")
    for data in ({"status": "resolved"}, {"status": "resolved", "csrf": "forged-token"}):
        refused = client.post(f"/reviews/{review}/status", data=data)
        assert refused.status_code == 403
        assert "This form is out of date or came from another site: nothing was changed." in refused.text
    assert client.post(f"/reviews/{review}/note", data={"text": "hello"}).status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    assert inbox.client().post("/login", data={"name": "max", "password": PASSWORDS["max"]}).status_code == 403
    with inbox.sessions() as session:
        assert session.get(Review, review).status == "new"
    assert review_events(inbox.sessions, review) == []
    # With the page's token it works.
    done = client.post(f"/reviews/{review}/status", data={"status": "resolved", "csrf": csrf_of(page.text)})
    assert done.status_code == 303
    with inbox.sessions() as session:
        assert session.get(Review, review).status == "resolved"


def test_owners_manage_people_and_members_cannot(inbox):
    member = inbox.login("max")
    assert member.get("/people").status_code == 403
    token = csrf_of(member.get("/").text)
    assert member.post("/people/add", data={"csrf": token, "name": "eve", "role": "owner",
                                            "password": "eve-password-123"}).status_code == 403
    assert "People" not in re.sub(r"<title>.*?</title>", "", member.get("/").text)

    owner = inbox.login("olivia")
    token = csrf_of(owner.get("/people").text)
    owner.post("/people/add", data={"csrf": token, "name": "theo", "role": "member", "password": "theo-password-1"})
    assert "Added theo (member)." in owner.get("/people").text
    theo = inbox.login("theo", "theo-password-1")
    assert theo.get("/").status_code == 200
    short = owner.post("/people/add", data={"csrf": token, "name": "bob", "role": "member", "password": "short"})
    assert short.status_code == 303
    assert "Not done: the password must be at least 10 characters long" in owner.get("/people").text
    owner.post("/people/remove", data={"csrf": token, "name": "theo"})
    assert "Removed theo: their sessions have ended." in owner.get("/people").text
    assert theo.get("/").status_code == 303


def test_a_stale_form_still_acts_and_says_who_changed_the_review_meanwhile(inbox):
    review = inbox.seeded.complaints[1]
    olivia, max_ = inbox.login("olivia"), inbox.login("max")
    olivia_page = olivia.get(f"/reviews/{review}").text
    max_page = max_.get(f"/reviews/{review}").text
    assert max_.post(f"/reviews/{review}/assign", data={"csrf": csrf_of(max_page), "to": "me",
                                                        "seen_version": version_of(max_page)}).status_code == 303
    # Olivia's page still shows the review as it was before max took it.
    resolved = olivia.post(f"/reviews/{review}/status", data={"csrf": csrf_of(olivia_page), "status": "resolved",
                                                              "seen_version": version_of(olivia_page)})
    assert resolved.status_code == 303
    after = unescape(olivia.get(f"/reviews/{review}").text)
    assert "Someone changed this review meanwhile: max (web) assign: — → max" in after
    assert "Your change was applied after theirs; the trail shows both. Marked resolved." in after
    events = review_events(inbox.sessions, review)
    assert [(e.actor, e.action, e.after, e.stale) for e in events] == [
        ("max", "assign", "max", False), ("max", "status", "assigned", False), ("olivia", "status", "resolved", True)]
    assert after.count("on a stale view") == 1
    with inbox.sessions() as session:
        row = session.get(Review, review)
        assert (row.status, row.assignee) == ("resolved", "max")


def test_hostile_review_text_is_escaped_and_its_javascript_link_never_rendered(inbox):
    client = inbox.login("max")
    page = client.get(f"/reviews/{inbox.seeded.hostile}").text
    listing = client.get("/").text
    for html in (page, listing):
        assert "<script>window.pwned" not in html and 'id="pwn-img"' not in html and "<b id=" not in html
        assert "href=\"javascript:" not in html and "href=javascript" not in html
    assert "&lt;script&gt;window.pwned = &#34;body&#34;&lt;/script&gt;" in page
    assert "{{ 7*7 }}" in page  # shown as written, never evaluated
    assert "Answer it on" not in page  # no http(s) link to answer it: no link at all
    normal = client.get(f"/reviews/{inbox.seeded.complaints[0]}").text
    assert ('<a class="answer" href="https://reviews.example/c0" target="_blank" rel="noopener noreferrer nofollow">'
            in normal)


def test_pages_forbid_framing_inline_scripts_and_sniffing(inbox):
    client = inbox.login("max")
    for path in ["/", "/login", f"/reviews/{inbox.seeded.complaints[0]}", "/static/inbox.js", "/no-such-page"]:
        response = client.get(path)
        assert response.headers["content-security-policy"].startswith("default-src 'self';"), path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    page = client.get("/").text
    assert "<script>" not in page and " style=" not in page and "<style" not in page


def test_the_inbox_filters_counts_and_pages(inbox):
    client = inbox.login("max")
    default = client.get("/").text
    assert "5 reviews" in default and "Happy Regular" not in default  # the complaints, not the praise
    assert 'value="pl">pl (1)' in default
    polish = client.get("/", params={"language": "pl"}).text
    assert "1 review<" in polish and "Kawa zimna" in polish and "Cold coffee" not in polish
    searched = client.get("/", params={"q": "croissant"}).text
    assert "Waited 40 minutes" in searched and "1 review<" in searched
    paged = client.get("/", params={"per_page": "2", "language": "en"}).text
    assert "page 1 of 2" in paged and 'href="/?per_page=2&amp;language=en&amp;page=2" rel="next"' in paged
    second = client.get("/", params={"per_page": "2", "language": "en", "page": "2"}).text
    assert "page 2 of 2" in second and "Dirty tables" in second and "Cold coffee" not in second
    everything = client.get("/", params={"label": "any", "status": "all"}).text
    assert "Happy Regular" in everything
    bad = client.get("/", params={"order": "sideways"}).text
    assert "unknown order" in bad


def test_a_literal_secret_key_in_the_config_is_refused():
    with pytest.raises(ConfigError) as raised:
        parse_config("web:\n  secret_key: 0123456789abcdef0123456789abcdef\n")
    assert raised.value.problems == [
        "web.secret_key: give it as ${VAR} (an environment variable) or ${file:PATH}, not written in the file"]
    config = parse_config("web:\n  secret_key: ${KEY}\n", env={"KEY": "k" * 40})
    assert config.web.secret_key.get_secret_value() == "k" * 40


def test_without_a_configured_key_one_is_generated_once_and_kept_private(inbox, tmp_path):
    key_file = inbox.config.data_dir / "web-secret"
    assert key_file.stat().st_mode & 0o777 == 0o600
    first = key_file.read_text()
    client = inbox.login("max")
    with WebServer(inbox.config, sessions=inbox.sessions) as again:  # a restart: the same key, still logged in
        assert key_file.read_text() == first
        response = httpx.get(f"{again.url}/", cookies={"repwatch_session": client.cookies["repwatch_session"]})
        assert response.status_code == 200
