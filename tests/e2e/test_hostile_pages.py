"""Hostile pages through `repwatch crawl`: each is bounded or neutralised, counted, and loses nothing stored.

One local site serves every hostile input, each to its own source, and two real crawls (a baseline for the sources that
need stored reviews, then all sources) feed every test: a crawl is seconds of process start-up, the checks are not.
A second local site, on another port of 127.0.0.1, stands for an internal service that links and redirects point
at; it must never be asked anything. The crawl has a 90-second timeout: far above what it takes (seconds), far below
what a page that is quadratic to read would take.
"""
from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from models.tables import CrawlRun, Review, Source
from tests.cli import Result, run_cli, run_process
from tests.e2e.hostile_site import Answer, HostileSite, MiB, gzip_of_zeros

MAX_PAGES = 5
DEEP = "<div>" * 100_000 + "deep" + "</div>" * 100_000
HOSTILE_TEXT = "\x1b[2J\x1b]0;pwned\x07cold \x1b[31mcoffee\x1b[0m, \u202eevil\u202c \u2066isolated\u2069 end"


def reviews_html(ids: list[str], text: str = "fine coffee") -> str:
    return "".join(
        f'<article class="review" data-id="{i}"><h3>Visit {i}</h3><p class="text">Review {i}: {text}.</p>'
        f'<span class="stars">4</span></article>'
        for i in ids
    )


def review_page(ids: list[str], next_href: str | None = None, *, before: str = "", text: str = "fine coffee") -> str:
    """A page of reviews in the layout the sources below read; `before` goes ahead of the reviews."""
    more = f'<a class="next" href="{next_href}">older</a>' if next_href else ""
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Reviews</title></head>'
        f"<body>{before}{reviews_html(ids, text)}{more}</body></html>"
    )


def padded(size: int) -> str:
    """A page of reviews r1 and r2 padded to `size` bytes with a comment (real pages carry their bulk in scripts)."""
    page = review_page(["r1", "r2"])
    return page.replace("<body>", "<body><!--" + "x" * (size - len(page) - len("<!---->")) + "-->")


def in_chunks(body: bytes) -> Callable[[], Iterator[bytes]]:
    return lambda: (body[i : i + MiB] for i in range(0, len(body), MiB))


def hostile_answer(path: str) -> Answer | None:
    """The pages that are made on request: endless paging, and an endless chain of redirects."""
    if path.startswith("/endless"):
        n = int(path.rsplit("=", 1)[1]) if "?page=" in path else 1
        return Answer.html(review_page([f"p{n}a", f"p{n}b"], f"/endless?page={n + 1}"))
    if path.startswith("/hop/"):
        return Answer.redirect(f"/hop/{int(path.removeprefix('/hop/')) + 1}")
    return None


def json_ld_page(reviews: list[dict[str, Any]], *, body_extra: str = "") -> str:
    """A page whose reviews are schema.org JSON-LD (raw review text inside JSON, as Trustpilot and others ship it)."""
    data = json.dumps({"@context": "https://schema.org", "@type": "LocalBusiness", "name": "Hostile Cafe",
                       "review": [{"@type": "Review", "reviewRating": {"ratingValue": 1}, **r} for r in reviews]})
    return (f'<!doctype html><html><head><meta charset="utf-8"><script type="application/ld+json">{data}</script>'
            f"</head><body>{body_extra}</body></html>")


def nested_microdata(depth: int) -> str:
    """Microdata items nested `depth` deep, each a property of the one around it."""
    opening = '<div itemprop="about" itemscope itemtype="https://schema.org/Thing"><span itemprop="name">n</span>'
    return opening * depth + "</div>" * depth


def hostile_pages(internal: str, local_file: Path) -> dict[str, Answer | str | bytes]:
    """Path → answer of the second crawl, one hostile input per source (the source is named as the path).

    `internal` is the other local site's URL; `local_file` a file on this machine holding a page of reviews.
    """
    bomb_length, bomb = gzip_of_zeros(1024 * MiB)  # 1 GiB of zeros gzip-compressed once: ~1 MB on the wire
    invalid_utf8 = review_page(["r1", "r2"], text="caf\udce9 au lait \udcff\udcfe ok").encode("utf-8", "surrogateescape")
    assert b"caf\xe9 au lait \xff\xfe ok" in invalid_utf8  # Latin-1 and stray bytes in a page that says it is UTF-8
    return {
        "/large": padded(6 * MiB),  # over DOWNLOAD_WARNSIZE (5 MiB), under DOWNLOAD_MAXSIZE (20 MiB)
        "/oversize": padded(21 * MiB),  # with Content-Length: refused before the body is read
        "/streamed": review_page(["r1", "r2"], "/streamed?page=2"),
        # No Content-Length: the size is only known as the body arrives.
        "/streamed?page=2": Answer(200, in_chunks(padded(21 * MiB).encode()), {"Content-Type": "text/html"}),
        "/bomb": Answer(200, bomb, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, bomb_length),
        # libxml2 stops at 2,048 levels and keeps the tree it had: reviews before the deep part are read.
        "/deep": review_page(["r2"], before=reviews_html(["r1"]) + DEEP),
        "/deepfirst": review_page(["r1", "r2"], before=DEEP),
        "/utf8": invalid_utf8,
        "/ansi": review_page(["r1"], text=HOSTILE_TEXT),
        "/loop": Answer.redirect("/loop-back"),
        "/loop-back": Answer.redirect("/loop"),
        "/chain": Answer.redirect("/hop/1"),
        "/hangup": Answer.hang_up(),
        "/cycle": review_page(["a1", "a2"], "/cycle?page=2"),
        "/cycle?page=2": review_page(["b1", "b2"], "/cycle?page=3"),
        "/cycle?page=3": review_page(["c1", "c2"], "/cycle"),  # back to the first page
        # Review text planted raw in JSON-LD: ~1 MB of unclosed tags in one review (quadratic for regexes).
        "/script_flood": json_ld_page([
            {"@id": "sf1", "reviewBody": "<p>Cold coffee.</p>" + "<script>" * (MiB // 8)},
            {"@id": "sf2", "reviewBody": "<p>Rude staff.</p>" + "<br" * (MiB // 3)},
            {"@id": "sf3", "reviewBody": "Fine."},
        ]),
        # JSON-LD reviews beside microdata nested 1,000 deep (extruct: cubic, then RecursionError).
        "/deep_microdata": json_ld_page([{"@id": "j1", "reviewBody": "Burnt toast."}], body_extra=nested_microdata(1000)),
        # A page that opens like a feed's prolog, many empty comments, and is not one (exponential for a regex).
        "/comment_flood": "<!---->" * 2000 + review_page(["r1"]),
        # Links, redirects and refreshes to where a crawl must not go.
        "/file_next": review_page(["r1", "r2"], local_file.as_uri()),
        "/redirect_internal": Answer.redirect(f"{internal}/internal"),
        "/next_internal": review_page(["r1", "r2"], f"{internal}/internal"),
        "/refresh_internal": review_page(
            ["r1"], before=f'<meta http-equiv="refresh" content="0; url={internal}/internal">'
        ),
        "/next_offsite": review_page(["r1", "r2"], f"http://localhost:{internal.rsplit(':', 1)[1]}/internal"),
        # Its source allows localhost, but localhost is 127.0.0.1 on another port than the source's own.
        "/allowed_internal": review_page(["r1", "r2"], f"http://localhost:{internal.rsplit(':', 1)[1]}/internal"),
    }


SOURCES = ["large", "oversize", "streamed", "bomb", "deep", "deepfirst", "utf8", "ansi", "loop", "chain", "hangup", "cycle",
           "endless", "script_flood", "deep_microdata", "comment_flood", "file_next", "redirect_internal", "next_internal",
           "refresh_internal", "next_offsite", "allowed_internal"]
SPIDER_KINDS = {"script_flood": "schema_org", "deep_microdata": "schema_org", "comment_flood": "feed"}  # else selectors
EXTRA_OPTIONS = {"allowed_internal": "allowed_hosts: [localhost]"}
BASELINE = ["oversize", "deepfirst"]  # crawled once with ordinary pages first: what they store must survive


@dataclass
class Crawled:
    site: HostileSite
    internal: HostileSite
    tmp: Path
    config: Path
    baseline: Result | None = None
    result: Result | None = None
    peak_rss: int = 0

    def repwatch(self, *args: str) -> Result:
        return run_cli(*args, "--config", str(self.config), cwd=self.tmp)

    def measured(self, *args: str) -> Result:
        """The command as a child process, under a wrapper that reaps it and its crawl child, then prints their peak
        RSS (KiB): what a page costs in memory is the point, so this one needs processes of its own."""
        wrapper = (
            "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]);"
            " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
        )
        done = run_process(*args, "--config", str(self.config), cwd=self.tmp, launcher=[sys.executable, "-c", wrapper])
        stdout, _, peak_kib = done.stdout.rstrip("\n").rpartition("\n")
        self.peak_rss = int(peak_kib) * 1024
        return Result(done.code, stdout, done.stderr)

    def problem(self, source: str) -> str:
        """The one `repwatch:` line the full crawl wrote about `source` (there must be exactly one)."""
        assert self.result is not None
        lines = [line for line in self.result.stderr.splitlines() if line.startswith(f"repwatch: source {source} ")]
        assert len(lines) == 1, self.result.stderr
        return lines[0]

    def health_notes(self, source: str) -> str:
        """The "last run's notes" cell of `source`'s row in `repwatch sources health`, its wrapped lines joined."""
        health = self.repwatch("sources", "health")
        assert health.code == 0, health.stderr
        cells: list[str] = []
        row = None
        for line in health.stdout.splitlines():
            parts = [part.strip() for part in line.split("│")[1:-1]]
            if not parts:
                continue
            if parts[0]:
                row = parts[0]
            if row == source:
                cells.append(parts[-1])
        return " ".join(cell for cell in cells if cell)

    def run(self, source: str) -> Any:
        """The source's last CrawlRun: outcome, error, items, stats."""
        query = (
            select(CrawlRun.outcome, CrawlRun.error, CrawlRun.items, CrawlRun.stats)
            .join(Source).where(Source.name == source).order_by(CrawlRun.id.desc()).limit(1)
        )
        return self._query(query)[0]

    def stored(self, source: str) -> dict[str, str]:
        """external_id → body of the source's stored reviews."""
        return dict(self._query(select(Review.external_id, Review.body).join(Source).where(Source.name == source)))

    def requested(self, source: str) -> list[str]:
        return self.site.requested(f"/{source}")

    def _query(self, query: Any) -> list[Any]:
        engine = create_engine(f"sqlite:///{self.tmp / 'data' / 'repwatch.db'}")
        try:
            with engine.connect() as db:
                return list(db.execute(query))
        finally:
            engine.dispose()


def source_entry(name: str, url: str) -> str:
    if name in SPIDER_KINDS:
        return f"""
              - name: {name}
                kind: {SPIDER_KINDS[name]}
                url: {url}/{name}"""
    extra = f"\n                  {EXTRA_OPTIONS[name]}" if name in EXTRA_OPTIONS else ""
    return f"""
              - name: {name}
                kind: selectors
                url: {url}/{name}
                options:
                  review: article.review
                  id: ./@data-id
                  title: h3
                  body: p.text
                  rating: span.stars::text
                  next: a.next::attr(href)""" + extra


def write_config(tmp: Path, url: str) -> Path:
    sources = "".join(source_entry(name, url) for name in SOURCES)
    config = tmp / "config.yaml"
    config.write_text(textwrap.dedent(f"""
        data_dir: {tmp / 'data'}
        crawl:
          polite: false
          download_delay: 0
          max_pages: {MAX_PAGES}
          timeout: 90s
        businesses:
          - name: Hostile Cafe
            sources:""") + sources + "\n")
    return config


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    local_file = tmp / "local-reviews.html"
    local_file.write_text(review_page(["local1", "local2"]))
    with HostileSite(dynamic=hostile_answer) as site, HostileSite() as internal:
        internal.answers["/internal"] = Answer.html(review_page(["secret1", "secret2"]))
        done = Crawled(site, internal, tmp, write_config(tmp, site.url))
        for name in BASELINE:
            site.answers[f"/{name}"] = Answer.html(review_page(["r1", "r2"]))
        done.baseline = done.repwatch("crawl", *(arg for name in BASELINE for arg in ("--source", name)))
        for path, answer in hostile_pages(internal.url, local_file).items():
            site.answers[path] = answer if isinstance(answer, Answer) else Answer.html(answer)
        done.result = done.measured("crawl")
        yield done


def test_the_crawl_ends_with_a_line_for_each_failed_source_and_no_traceback(crawled):
    assert crawled.baseline.code == 0, crawled.baseline.stderr
    assert crawled.result.code == 1
    failed = {line.split()[2] for line in crawled.result.stderr.splitlines() if line.startswith("repwatch: source ")}
    assert failed == {"oversize", "bomb", "deepfirst", "loop", "chain", "hangup", "redirect_internal", "refresh_internal",
                      "comment_flood"}  # no review read on a source that never had one: empty (issue 16)
    assert "Traceback" not in crawled.result.stderr


# --- size ----------------------------------------------------------------------------------------------------------


def test_a_large_page_is_read_and_counted(crawled):
    run = crawled.run("large")
    assert (run.outcome, run.stats["repwatch/large_pages"]) == ("ok", 1)
    assert set(crawled.stored("large")) == {"r1", "r2"}


def test_a_page_over_the_max_size_is_cancelled_named_and_loses_nothing(crawled):
    problem = crawled.problem("oversize")
    assert "failed: page of 22,020,096 bytes is over the 20 MiB download limit (DOWNLOAD_MAXSIZE)" in problem
    run = crawled.run("oversize")
    assert (run.outcome, run.stats["repwatch/oversize_pages"]) == ("failed", 1)
    assert crawled.requested("oversize") == ["/oversize", "/oversize"]  # once per crawl: not retried
    assert set(crawled.stored("oversize")) == {"r1", "r2"}  # from the baseline crawl
    health = crawled.repwatch("sources", "health")
    row = next(line for line in health.stdout.splitlines() if " oversize " in line)
    assert "failing" in row and "download limit" in health.stdout


def test_a_page_that_streams_past_the_max_size_is_cut_off_and_earlier_pages_are_kept(crawled):
    run = crawled.run("streamed")
    assert run.outcome == "ok"  # one page of two failed: recorded on the run, the source still works
    assert run.stats["repwatch/oversize_pages"] == 1
    assert "page grew past the 20 MiB download limit (DOWNLOAD_MAXSIZE) while downloading" in run.error
    assert set(crawled.stored("streamed")) == {"r1", "r2"}
    # An ok run that met trouble still says so in `sources health`.
    health = crawled.repwatch("sources", "health").stdout
    row = next(line for line in health.splitlines() if " streamed " in line)
    assert " ok " in row and "1 page over the download limit" in health


def test_a_compression_bomb_is_stopped_at_the_size_limit_not_by_running_out_of_memory(crawled):
    problem = crawled.problem("bomb")
    assert "failed: compression bomb:" in problem and "inflate past the 20 MiB download limit" in problem
    assert crawled.run("bomb").stats["repwatch/decompression_bombs"] == 1
    assert crawled.peak_rss < 512 * MiB  # inflating it whole would take over 1 GiB


# --- markup and text -----------------------------------------------------------------------------------------------


def test_deeply_nested_html_is_read_as_far_as_the_parser_goes_and_counted(crawled):
    run = crawled.run("deep")
    assert (run.outcome, run.items, run.stats["repwatch/truncated_html"]) == ("ok", 1, 1)
    assert set(crawled.stored("deep")) == {"r1"}  # r2, after the deep part, is beyond what libxml2 keeps


def test_deeply_nested_html_before_every_review_breaks_the_source_and_loses_nothing(crawled):
    assert "broken: no reviews where there used to be some" in crawled.problem("deepfirst")
    assert crawled.run("deepfirst").stats["repwatch/truncated_html"] == 1
    assert set(crawled.stored("deepfirst")) == {"r1", "r2"}


def test_invalid_utf8_in_a_page_declared_utf8_is_replaced_and_counted(crawled):
    run = crawled.run("utf8")
    assert (run.outcome, run.stats["repwatch/encoding_errors"]) == ("ok", 1)
    assert crawled.stored("utf8") == {
        "r1": "Review r1: caf\ufffd au lait \ufffd\ufffd ok.",
        "r2": "Review r2: caf\ufffd au lait \ufffd\ufffd ok.",
    }


def test_terminal_escapes_and_bidi_controls_in_reviews_print_neutralised(crawled):
    shown = crawled.repwatch("reviews", "--source", "ansi")
    assert shown.code == 0, shown.stderr
    assert "coffee" in shown.stdout and "evil" in shown.stdout and "isolated" in shown.stdout
    for unsafe in ("\x1b", "\x07", "\u202e", "\u202c", "\u2066", "\u2069"):
        assert unsafe not in shown.stdout


# --- redirects and paging ------------------------------------------------------------------------------------------


def test_a_redirect_loop_fails_the_source_with_one_line(crawled):
    assert "failed: redirect loop: 2 redirects lead back to" in crawled.problem("loop")
    assert crawled.run("loop").stats["repwatch/redirect_loops"] == 1
    assert crawled.requested("loop") == ["/loop", "/loop-back"]


def test_a_long_redirect_chain_stops_at_redirect_max_times(crawled):
    assert "failed: more than 5 redirects in a row (REDIRECT_MAX_TIMES)" in crawled.problem("chain")
    assert crawled.run("chain").stats["repwatch/redirect_cap_reached"] == 1
    assert crawled.site.requested("/hop/") == ["/hop/1", "/hop/2", "/hop/3", "/hop/4", "/hop/5"]


def test_a_site_that_hangs_up_fails_the_source_with_a_readable_reason(crawled):
    problem = crawled.problem("hangup")
    assert "failed: ConnectionDone: Connection was closed cleanly. at" in problem
    assert crawled.requested("hangup") == ["/hangup"] * 3  # RETRY_TIMES = 2 retries, then it gives up


def test_pagination_that_cycles_is_stopped_and_counted(crawled):
    assert crawled.requested("cycle") == ["/cycle", "/cycle?page=2", "/cycle?page=3"]
    run = crawled.run("cycle")
    assert (run.outcome, run.stats["repwatch/pagination_cycle"]) == ("ok", 1)
    assert set(crawled.stored("cycle")) == {"a1", "a2", "b1", "b2", "c1", "c2"}


def test_pagination_that_never_ends_stops_at_max_pages(crawled):
    assert len(crawled.requested("endless")) == MAX_PAGES
    run = crawled.run("endless")
    assert (run.outcome, run.stats["repwatch/page_cap_reached"]) == ("ok", 1)
    assert "repwatch/pagination_cycle" not in run.stats
    assert len(crawled.stored("endless")) == 2 * MAX_PAGES


# --- review text and microdata that are costly to read ---------------------------------------------------------------


def test_review_text_flooded_with_unclosed_tags_is_read_in_linear_time(crawled):
    run = crawled.run("script_flood")
    assert (run.outcome, run.items) == ("ok", 3)
    stored = crawled.stored("script_flood")
    assert stored["sf1"] == "Cold coffee." and stored["sf2"].startswith("Rude staff.") and stored["sf3"] == "Fine."


def test_microdata_nested_too_deep_is_skipped_and_counted_and_the_json_ld_reviews_are_kept(crawled):
    run = crawled.run("deep_microdata")
    assert (run.outcome, run.stats["repwatch/microdata_skipped"]) == ("ok", 1)
    assert crawled.stored("deep_microdata") == {"j1": "Burnt toast."}
    assert "RecursionError" not in (crawled.tmp / "data" / "logs" / "crawl.log").read_text()
    assert "1 page with microdata too deeply nested or too large to read" in crawled.health_notes("deep_microdata")


def test_a_page_that_opens_with_a_flood_of_empty_comments_is_told_from_a_feed_at_once(crawled):
    run = crawled.run("comment_flood")
    # read, and not a feed; no review on a source that never had one: `empty` (issue 16)
    assert (run.outcome, run.items, run.stats["repwatch/empty_pages"]) == ("empty", 0, 1)


# --- where a crawl may go: http(s) only, the source's own site, no private address but the source's own -----------


def test_a_next_link_to_a_local_file_is_refused_and_counted(crawled):
    run = crawled.run("file_next")
    assert (run.outcome, run.stats["repwatch/refused_scheme"]) == ("ok", 1)
    assert "not an http(s) URL, not fetched: file://" in run.error
    assert set(crawled.stored("file_next")) == {"r1", "r2"}  # not local1, local2 from the file
    assert "1 link to a non-http(s) URL refused" in crawled.health_notes("file_next")


def test_a_redirect_to_another_port_of_the_loopback_address_is_refused(crawled):
    problem = crawled.problem("redirect_internal")
    assert f"failed: 127.0.0.1 is at 127.0.0.1, a private address, not fetched: {crawled.internal.url}/internal" in problem
    assert crawled.run("redirect_internal").stats["repwatch/refused_private"] == 1
    assert crawled.internal.paths == []  # not even its robots.txt
    assert crawled.stored("redirect_internal") == {}


def test_a_next_link_and_a_meta_refresh_to_a_private_address_are_refused(crawled):
    run = crawled.run("next_internal")
    assert (run.outcome, run.stats["repwatch/refused_private"]) == ("ok", 1)
    assert set(crawled.stored("next_internal")) == {"r1", "r2"}
    assert "a private address, not fetched" in crawled.problem("refresh_internal")
    assert crawled.run("refresh_internal").stats["repwatch/refused_private"] == 1
    assert crawled.internal.paths == []
    assert "1 request to a private address refused" in crawled.health_notes("next_internal")


def test_a_next_link_to_another_host_is_refused(crawled):
    run = crawled.run("next_offsite")
    assert (run.outcome, run.stats["repwatch/refused_offsite"]) == ("ok", 1)
    assert "localhost is not the source's site (127.0.0.1)" in run.error
    assert crawled.requested("next_offsite") == ["/next_offsite"]
    assert "1 request off the source's site refused" in crawled.health_notes("next_offsite")


def test_an_allowed_host_is_still_refused_when_its_name_resolves_to_a_private_address(crawled):
    run = crawled.run("allowed_internal")
    assert (run.outcome, run.stats["repwatch/refused_private"]) == ("ok", 1)
    assert "localhost is at 127.0.0.1, a private address" in run.error
    assert crawled.internal.paths == []


# --- review ids and links the databases refuse -----------------------------------------------------------------------


def test_a_lone_surrogate_or_nul_in_review_ids_and_links_loses_no_review(database_url, tmp_path):
    """JSON-LD may escape any code point: a lone surrogate (SQLite refuses it) or NUL (PostgreSQL refuses it) in one
    review's id or link used to fail the whole batch, every crawl, storing none of the page's reviews."""
    page = json_ld_page([
        {"@id": "https://cafe.example/r/1\ud800", "url": "https://cafe.example/r/1\ud800x", "reviewBody": "Cold."},
        {"@id": "https://cafe.example/r/2\u0000", "url": "https://cafe.example/r/2\u0000x", "reviewBody": "Burnt."},
        {"@id": "https://cafe.example/r/3", "reviewBody": "Dirty tables."},
        {"@id": "https://cafe.example/r/4", "reviewBody": "Rude staff."},
    ])
    with HostileSite() as site:
        site.answers["/reviews"] = Answer.html(page)
        config = tmp_path / "config.yaml"
        config.write_text(textwrap.dedent(f"""
            database: {database_url}
            data_dir: {tmp_path / 'data'}
            crawl: {{polite: false, download_delay: 0}}
            businesses:
              - name: Hostile Cafe
                sources:
                  - {{name: cafe, kind: schema_org, url: "{site.url}/reviews"}}
        """))
        done = run_cli("crawl", "--config", str(config), cwd=tmp_path)
    assert done.code == 0, done.stderr
    engine = create_engine(database_url)
    try:
        with engine.connect() as db:
            stored = dict(db.execute(select(Review.external_id, Review.url)).all())
    finally:
        engine.dispose()
    assert stored == {
        "https://cafe.example/r/1\\ud800": "https://cafe.example/r/1x",
        "https://cafe.example/r/2\\u0000": "https://cafe.example/r/2x",
        "https://cafe.example/r/3": f"{site.url}/reviews",
        "https://cafe.example/r/4": f"{site.url}/reviews",
    }
