"""Real saved pages, damaged the ways the web damages them: extractors yield valid reviews or count a problem."""
from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.spiders._pages import extract_survives

# page (relative to ../shared/fixtures/pages) → the spider made for it
REAL_PAGES = {
    "trustpilot/fakepilot__twenix.es__2025-05.html": "trustpilot",
    "trustpilot/fakepilot__www.granada.no__2025-05.html": "trustpilot",
    "trustpilot/json/scrapfly__trustpilot_next-data-api_reviews__2023-12.json": "trustpilot",
    "schema_org/recipe-scrapers__williamssonoma_2__bazaarvoice-microdata.html": "schema_org",
    "schema_org/recipe-scrapers__rachlmansfield__jsonld-recipe-reviews.html": "schema_org",
    "consumeraffairs/cabaleirog__sellmytimesharenow__2018-11.html": "consumeraffairs",
    "yelp/izzykiver__yelp_reviews__user-details__2019-09.html": "yelp",
    "yelp/json/scrapfly__yelp_gql-batch_reviews_projected__2025-08.json": "yelp",
    "skroutz/json/pyskroutz__shops__reviews.json": "skroutz",
    "googlemaps/aliepratama__listugcposts-raw-response__id__2025-05.bin": "google_maps",
}
ELEMENT = re.compile(rb"<(div|article|section|script|span|p)\b")


def mutate(draw, body: bytes) -> bytes:
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        mutation = draw(st.sampled_from(["truncate", "remove_node", "junk", "encoding", "huge"]))
        at = draw(st.integers(min_value=0, max_value=max(len(body) - 1, 0)))
        if mutation == "truncate":
            body = body[:at]
        elif mutation == "remove_node":
            starts = [m for m in ELEMENT.finditer(body)]
            if starts:
                start = draw(st.sampled_from(starts))
                end = body.find(b"</" + start.group(1) + b">", start.end())
                body = body[: start.start()] + (body[end + len(start.group(1)) + 3:] if end >= 0 else b"")
        elif mutation == "junk":
            body = body[:at] + draw(st.binary(min_size=1, max_size=256)) + body[at:]
        elif mutation == "encoding":
            codec = draw(st.sampled_from(["latin-1", "cp1252", "utf-16", "iso-8859-7"]))
            body = body.decode("utf-8", "replace").encode(codec, "replace")
        else:
            body = body[:at] + draw(st.sampled_from([b"A", "ż".encode(), b"&#x0;", b"<b>"])) * 200_000 + body[at:]
    return body


@functools.cache
def load(path: Path) -> bytes:
    return path.read_bytes()


@pytest.mark.fixtures
@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), auto=st.booleans())
def test_damaged_real_pages_never_crash_an_extractor(shared_fixtures, data, auto):
    relative = data.draw(st.sampled_from(sorted(REAL_PAGES)), label="page")
    spider = REAL_PAGES[relative]
    body = mutate(data.draw, load(shared_fixtures / "pages" / relative))
    extract_survives(body, "", "auto" if auto else spider)
