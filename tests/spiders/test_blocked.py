"""detect_block: vendors named from their pages and headers; ordinary pages (even behind Cloudflare) pass."""
from __future__ import annotations

from pathlib import Path

import pytest
from scrapy.http import Headers

from spiders.blocked import detect_block
from spiders.extract import strip_fences
from tests.spiders._pages import page_bytes


@pytest.mark.parametrize(
    ("page", "vendor"),
    [
        ("blocked_cloudflare_challenge.html", "cloudflare"),
        ("blocked_cloudflare_1020.html", "cloudflare"),
        ("blocked_perimeterx.html", "perimeterx"),
        ("blocked_imperva.html", "imperva"),
        ("blocked_datadome.html", "datadome"),
        ("blocked_akamai.html", "akamai"),
        ("blocked_sucuri.html", "sucuri"),
        ("blocked_amazon.html", "amazon"),
    ],
)
@pytest.mark.parametrize("status", [200, 403, 503])
def test_vendor_pages_are_named_whatever_the_status(page: str, vendor: str, status: int):
    assert detect_block(status, {}, strip_fences(page_bytes(page))) == vendor


@pytest.mark.parametrize("status", [200, 403])
def test_vendor_named_from_headers(status: int):
    challenge = Headers({"Server": "cloudflare", "CF-Mitigated": "challenge", "Content-Type": "text/html"})
    assert detect_block(status, challenge, b"<html></html>") == "cloudflare"
    assert detect_block(403, {"X-DataDome": "protected"}, b"<html>blocked</html>") == "datadome"
    assert detect_block(403, {"x-iinfo": "5-1234-0 0NNN"}, b"<html></html>") == "imperva"
    assert detect_block(403, {"Server": "Sucuri/Cloudproxy", "X-Sucuri-ID": "14013"}, b"<html></html>") == "sucuri"
    assert detect_block(403, {"Server": "AkamaiGHost"}, b"<title>Access Denied</title> Reference #18.5f2c1a17.17") == "akamai"


def test_weak_hints_alone_do_not_block_an_ordinary_answer():
    """A site behind Sucuri or Akamai answers every page with their headers; only a wall or a blocking status counts."""
    body = page_bytes("trustpilot.html")
    assert detect_block(200, {"Server": "Sucuri/Cloudproxy", "X-Sucuri-ID": "14013"}, body) is None
    assert detect_block(200, {"Server": "AkamaiGHost"}, body) is None
    assert detect_block(200, {}, b"<title>Access Denied</title> the staff denied me a refund, reference #12.") is None


def test_generic_status_without_vendor_markers():
    assert detect_block(403, {}, b"<html><body>Forbidden</body></html>") == "http-403"
    assert detect_block(429, {"Retry-After": "30"}, b"Too Many Requests") == "http-429"
    assert detect_block(503, None, b"") == "http-503"
    assert detect_block(404, {}, b"<html>Not found</html>") is None
    assert detect_block(500, {}, b"") is None


def test_cloudflare_server_with_a_blocking_status_is_cloudflare():
    headers = {"server": "cloudflare", "cf-ray": "8a1b2c3d4e5f6a7b-AMS"}
    assert detect_block(403, headers, b"<html>... /cdn-cgi/styles/main.css ...</html>") == "cloudflare"


@pytest.mark.parametrize(
    "page", ["trustpilot.html", "trustpilot_2024_cards.html", "schema_org_jsonld.html", "schema_org_microdata.html"]
)
def test_ordinary_pages_behind_cloudflare_are_not_blocked(page: str):
    headers = Headers({"Server": "cloudflare", "CF-Ray": "8a1b2c3d4e5f6a7b-AMS", "CF-Cache-Status": "HIT"})
    body = page_bytes(page)
    assert b"cloudflare" in page_bytes("trustpilot.html")  # a cdnjs.cloudflare.com script URL
    assert detect_block(200, headers, body) is None


def test_vendor_sensor_scripts_on_an_ordinary_page_do_not_fire():
    """Protected sites load the vendor's sensor on every page; only a blocking status makes it a block."""
    sensors = (
        b"<script>window._pxAppId='PXabcd1234';</script><script src='//client.perimeterx.net/PXabcd1234/main.min.js'>"
        b"</script><script src='https://js.datadome.co/tags.js'></script>"
        b"<script src='/_Incapsula_Resource?SWJIYLWA=719d34d31c8e3a6e6fffd425f7e032f3'></script>"
        b"<script src='/cdn-cgi/challenge-platform/scripts/jsd/main.js'></script>"
    )
    body = page_bytes("trustpilot.html").replace(b"</head>", sensors + b"</head>", 1)
    assert detect_block(200, {}, body) is None
    assert detect_block(403, {}, body) == "perimeterx"


def test_a_review_quoting_a_challenge_title_is_not_a_block():
    body = page_bytes("trustpilot.html").replace(b"Support asked for photos", b"It said Just a moment... forever", 1)
    assert detect_block(200, {"Server": "cloudflare"}, body) is None


def test_markers_past_the_first_64_kb_are_not_read():
    body = b"<html><body>" + b"x" * 70_000 + b"<div id='px-captcha'></div></body></html>"
    assert detect_block(200, {}, body) is None


def test_a_large_ordinary_page_served_by_cloudflare_is_not_blocked():
    body = page_bytes("trustpilot.html") * 40  # ~400 KB, past the scanned head
    assert detect_block(200, {"server": "cloudflare"}, body) is None


@pytest.mark.fixtures
@pytest.mark.parametrize(
    ("filename", "vendor"),
    [
        ("bbsetup__pyszne_aux.pyszne.pl.html", "cloudflare"),
        ("bbsetup__canva_about.canva.com.html", "cloudflare"),
        ("bbsetup__fanduel_api.fanduel.com.html", "perimeterx"),
        ("bbsetup__imperva-incapsula__acc-sklep.pyszne.pl.html", "imperva"),
    ],
)
def test_real_challenge_pages(real_pages: Path, filename: str, vendor: str):
    body = (real_pages / "blocked" / filename).read_bytes()
    assert detect_block(200, {}, body) == vendor
    assert detect_block(403, {}, strip_fences(body)) == vendor


@pytest.mark.fixtures
def test_real_review_pages_are_not_blocked(real_pages: Path):
    pages = [p for d in ("trustpilot", "schema_org", "yelp", "consumeraffairs") for p in (real_pages / d).glob("*.html")]
    assert len(pages) >= 10
    for page in pages:
        assert detect_block(200, {"Server": "cloudflare"}, page.read_bytes()) is None, page.name


def _full_check(monkeypatch, status, headers, body):
    """detect_block with its fast path off (every page counts as carrying a marker)."""
    from spiders import blocked

    with monkeypatch.context() as patch:
        patch.setattr(blocked, "_PAGE_LITERALS", (b"",))
        return detect_block(status, headers, body)


@pytest.mark.parametrize(
    "page",
    ["blocked_cloudflare_challenge.html", "blocked_cloudflare_1020.html", "blocked_perimeterx.html",
     "blocked_imperva.html", "blocked_datadome.html", "blocked_akamai.html", "blocked_sucuri.html", "trustpilot.html", "trustpilot_2024_cards.html",
     "schema_org_jsonld.html", "schema_org_microdata.html"],
)
@pytest.mark.parametrize("headers", [{}, {"Server": "cloudflare"}, {"Server": "AkamaiGHost"}, {"cf-mitigated": "challenge"}])
def test_fast_path_gives_what_the_full_check_gives(monkeypatch, page: str, headers: dict):
    body = strip_fences(page_bytes(page))
    for status in (200, 404, 403):
        assert detect_block(status, headers, body) == _full_check(monkeypatch, status, headers, body)


@pytest.mark.parametrize(
    ("marker", "vendor"),
    [
        (b"<title>Just a moment...</title><script src='/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1'>", "cloudflare"),
        (b"<div id=\"px-captcha\"></div>", "perimeterx"),
        (b"<script src='https://geo.captcha-delivery.com/captcha/'></script>", "datadome"),
        (b"<iframe src='/_Incapsula_Resource?CWUDNSAI=9'></iframe>Incapsula incident ID: 1-2", "imperva"),
        (b"<TITLE>Attention Required! | Cloudflare</TITLE>", "cloudflare"),
    ],
)
def test_fast_path_still_fires_on_a_200_challenge(marker: bytes, vendor: str):
    """A challenge served with status 200 carries its marker in the first KB; the cheap pre-check must see it."""
    body = b"<html><head>" + marker + b"</head><body>" + b"x" * 20_000 + b"</body></html>"
    assert detect_block(200, {}, body) == vendor
