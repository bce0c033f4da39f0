"""The `repwatch` command as an operator uses it: exit codes, stdout/stderr, what is written."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import run_cli

REPO = Path(__file__).resolve().parents[2]
PAGES = REPO / "tests" / "spiders" / "pages"


def test_extract_prints_one_json_line_per_review():
    result = run_cli("extract", str(PAGES / "trustpilot.html"), "--url", "https://www.trustpilot.com/review/x.example")
    assert result.code == 0, result.stderr
    reviews = [json.loads(line) for line in result.stdout.splitlines()]
    assert reviews and all(set(r) >= {"external_id", "url", "author", "rating", "title", "body", "published_at",
                                      "language", "reply"} for r in reviews)
    assert all(r["published_at"].endswith("+00:00") for r in reviews)


@pytest.mark.parametrize("page, vendor", [("blocked_cloudflare_challenge.html", "cloudflare"),
                                          ("blocked_perimeterx.html", "perimeterx")])
def test_extract_on_a_challenge_page_prints_nothing_and_exits_3(page, vendor):
    result = run_cli("extract", str(PAGES / page))
    assert (result.code, result.stdout, result.stderr.strip()) == (3, "", f"blocked: {vendor}")


def test_extract_on_the_real_blocked_pages_exits_3(shared_fixtures):
    for page in sorted((shared_fixtures / "pages" / "blocked").glob("*.html")):
        result = run_cli("extract", str(page))
        assert result.code == 3 and result.stdout == "", page.name
        assert result.stderr.startswith("blocked: "), page.name


def test_extract_of_a_missing_file_is_one_line():
    result = run_cli("extract", "/nonexistent/page.html")
    assert result.code == 1
    assert result.stderr.strip().splitlines() == ["repwatch: cannot read /nonexistent/page.html: No such file or directory"]


def test_score_adds_a_sentiment_to_each_line():
    lines = [{"text": "Cold food, rude staff, waited an hour. Never again."}, {"text": "Great", "stars": 5},
             {"text": "Obsługa była bardzo niemiła i kawa zimna.", "lang": "pl"}]
    result = run_cli("score", input="\n".join(json.dumps(line) for line in lines) + "\n")
    assert result.code == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["sentiment"]["label"] for o in out] == ["neg", "pos", "neg"]
    assert out[0]["text"] == lines[0]["text"] and out[1]["sentiment"]["why"].startswith("5")


def test_init_writes_a_config_that_checks(tmp_path):
    assert run_cli("init", cwd=tmp_path).code == 0
    again = run_cli("init", cwd=tmp_path)
    assert again.code == 1 and "exists" in again.stderr
    check = run_cli("config", "check", cwd=tmp_path, env={"SLACK_BOT_TOKEN": "xoxb-1"})
    assert check.code == 0, check.stderr
    assert "OK (1 business, 2 sources, 1 notifier)" in check.stdout
    missing = run_cli("config", "check", cwd=tmp_path, env={"SLACK_BOT_TOKEN": ""})
    assert missing.code == 1


def test_config_show_never_prints_a_secret(tmp_path):
    run_cli("init", cwd=tmp_path)
    shown = run_cli("config", "show", cwd=tmp_path, env={"SLACK_BOT_TOKEN": "xoxb-very-secret"})
    assert shown.code == 0, shown.stderr
    assert "xoxb-very-secret" not in shown.stdout and "channel: '#reviews'" in shown.stdout


def test_sources_list_shows_every_kind_with_its_help():
    result = run_cli("sources", "list")
    assert result.code == 0
    assert "trustpilot" in result.stdout and "schema_org" in result.stdout
    assert "verified on" in result.stdout


def test_sources_list_says_which_kinds_no_real_page_verified():
    result = run_cli("sources", "list", env={"COLUMNS": "400"})
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") >= 5}
    for kind in ("ripoff_report", "google_business"):
        assert rows[kind].split("│")[4].strip() == "no real page verified it yet", rows[kind]


def test_sources_list_says_which_kinds_a_real_page_verified():
    result = run_cli("sources", "list", env={"COLUMNS": "400"})
    assert result.code == 0
    rows = {line.split("│")[1].strip(): line.split("│")[4].strip()
            for line in result.stdout.splitlines() if line.count("│") == 5 and line.split("│")[1].strip()}
    for kind in ("google_play", "app_store", "reddit", "bluesky", "mastodon", "hackernews"):
        assert kind in rows, kind
    assert rows["google_play"].startswith("a real app page (May 2018 layout")
    assert rows["app_store"].startswith("Apple's real feed")
    assert rows["reddit"].startswith("a real thread's .json")
    assert rows["bluesky"] == "no real page verified it yet"
    assert rows["google_maps"].startswith("a real listugcposts answer (May 2025")


def test_eval_reports_negative_f1_per_language(tmp_path):
    rows = [
        {"text": "Cold food, rude staff, we waited an hour. Never again.", "label": "neg", "stars": 1},
        {"text": "The worst service I have had in years, avoid this place.", "label": "neg", "stars": 1},
        {"text": "Lovely coffee and very friendly people, we will be back.", "label": "pos", "stars": 5},
        {"text": "Great cake, great staff, highly recommended.", "label": "pos", "stars": 5},
    ]
    labelled = tmp_path / "en.jsonl"
    labelled.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = run_cli("eval", str(labelled), "--given-lang", "--format", "json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["en"]["n"] == 4 and report["en"]["f1"] == 1.0 and report["en"]["measure"].startswith("neg vs pos")
    older = json.loads(run_cli("eval", str(labelled), "--given-lang", "--with-neutral", "--format", "json").stdout)
    assert older["en"]["measure"] == "neg vs neu+pos"
    table = run_cli("eval", str(labelled))
    assert table.code == 0 and "F1(neg)" in table.stdout and "rev/CPU-s" in table.stdout
    assert run_cli("eval", str(tmp_path / "missing.jsonl")).code == 1


def test_score_reports_a_line_with_a_lone_surrogate_and_prints_every_valid_line():
    good = [json.dumps({"text": f"Cold food and rude staff, visit {n}."}) for n in range(300)]  # more than a batch
    lines = [*good[:150], '{"text": "bad \\ud800 text", "id": 7}', *good[150:], '{"text": "\\udfff"}']
    result = run_cli("score", "--lang", "en", input="\n".join(lines) + "\n")
    assert result.code == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 302
    assert [o["text"] for o in out if "sentiment" in o] == [json.loads(line)["text"] for line in good]
    bad = [o for o in out if "error" in o]
    assert [(o["line"], o.get("id")) for o in bad] == [(151, 7), (302, None)]
    assert bad[0]["error"].startswith("not valid Unicode text") and bad[0]["text"] == "bad \ud800 text"


def test_score_reports_a_line_that_is_not_utf8_and_goes_on():
    done = run_cli("score", "--lang", "en", input=b'{"text": "awful \xff\xfe service"}\n{"text": "Cold food, rude staff."}\n')
    assert done.code == 0, done.stderr
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first["line"] == 1 and first["error"].startswith("not valid Unicode text")
    assert second["sentiment"]["label"] == "neg"


def test_eval_names_the_file_and_line_of_each_bad_line_before_scoring(tmp_path):
    en = tmp_path / "en.jsonl"
    en.write_text('{"text": "Lovely.", "label": "pos"}\n\n{"text": "x", "label": "bad"}\n{nope\n{"text": "y"}\n')
    pl = tmp_path / "pl.jsonl"
    pl.write_bytes(b'{"text": "ok", "label": "neu"}\n{"text": "\xff", "label": "neg"}\n')
    result = run_cli("eval", str(en), str(pl), "--no-model")
    assert result.code == 1
    assert result.stderr.strip().splitlines() == [
        f"repwatch: {en}:3: \"label\" must be neg, neu or pos; got 'bad'",
        f"repwatch: {en}:4: not valid JSON: Expecting property name enclosed in double quotes (column 2)",
        f"repwatch: {en}:5: \"label\" must be neg, neu or pos; it has none",
        f"repwatch: {pl}:2: not UTF-8 text",
    ]
    assert result.stdout == ""
