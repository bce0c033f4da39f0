"""config.yaml validation: what an operator sees when the file is wrong, and what a good file becomes."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, parse_config
from tests.cli import run_cli

REPO = Path(__file__).resolve().parents[2]
GOOD = """
notifiers:
  team:
    kind: slack
    token: ${SLACK_BOT_TOKEN}
    channel: "#reviews"
businesses:
  - name: Acme
    notify: [team]
    sources:
      - name: acme-tp
        kind: trustpilot
        url: https://www.trustpilot.com/review/acme.example
"""


def problems(text: str, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={"SLACK_BOT_TOKEN": "xoxb-secret-1"} if env is None else env)
    return caught.value.problems


def test_a_good_config_is_typed_with_defaults():
    config = parse_config(GOOD, env={"SLACK_BOT_TOKEN": "xoxb-secret-1"})
    assert config.alerting.baseline_window == timedelta(hours=72)
    assert config.notifiers["team"].token.get_secret_value() == "xoxb-secret-1"
    assert [s.name for _, s in config.sources()] == ["acme-tp"]
    assert config.database_url().startswith("sqlite:///")


def test_unknown_keys_are_named_with_their_path_and_a_hint():
    text = GOOD.replace("    notify: [team]", "    notfy: [team]").replace("        url:", "        ur1:")
    found = problems(text)
    assert "business Acme: notfy: unknown key (did you mean 'notify'?)" in found
    assert any(p.startswith("source acme-tp: ur1: unknown key (did you mean 'url'?)") for p in found)
    assert "source acme-tp: url: required key is missing" in found


def test_all_problems_are_reported_at_once():
    text = GOOD.replace("kind: trustpilot", "kind: trustpilott").replace("https://www", "ftp://www")
    text += "crawl:\n  max_pages: many\n"
    found = problems(text)
    assert len(found) == 3, found
    assert any("did you mean 'trustpilot'" in p for p in found)
    assert any(p.startswith("source acme-tp: url: must be an http:// or https:// URL") for p in found)
    assert any(p.startswith("crawl.max_pages:") for p in found)


def test_a_missing_environment_variable_is_named_and_its_value_never_shown():
    found = problems(GOOD, env={})
    assert found == ["notifiers.team.token: environment variable SLACK_BOT_TOKEN is not set"]


def test_secrets_are_redacted_when_the_config_is_shown():
    from monitor.config import redacted

    shown = str(redacted(parse_config(GOOD, env={"SLACK_BOT_TOKEN": "xoxb-secret-1"})))
    assert "xoxb-secret-1" not in shown


def test_references_between_sections_are_checked():
    text = GOOD.replace("notify: [team]", "notify: [teem]") + GOOD.split("businesses:\n")[1]
    found = problems(text)
    assert "business Acme: notify.0: no notifier named 'teem' (did you mean 'team'?)" in found
    assert any("duplicate business 'Acme'" in p for p in found)


def test_notifier_kind_and_source_options_are_validated():
    text = GOOD.replace("kind: slack", "kind: slak")
    assert any(p.startswith("notifiers.team: unknown notifier kind") for p in problems(text))
    text = GOOD.replace("url: https://www.trustpilot.com/review/acme.example",
                        "url: https://www.trustpilot.com/review/acme.example\n        options: {colour: blue}")
    assert any("options.colour: unknown option" in p for p in problems(text))


def test_broken_yaml_is_one_line_with_its_position(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("businesses:\n  - name: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.problems) == 1
    assert "line 3" in caught.value.problems[0] and "not valid YAML" in caught.value.problems[0]


def test_data_dir_is_relative_to_the_config_file(tmp_path):
    path = tmp_path / "conf" / "config.yaml"
    path.parent.mkdir()
    path.write_text("data_dir: state\n")
    assert load_config(path).data_dir == tmp_path / "conf" / "state"


def test_the_shipped_config_files_are_valid_and_init_writes_the_same_one():
    env = {"SLACK_BOT_TOKEN": "xoxb-1"}
    template = REPO / "monitor" / "templates" / "config.yaml"
    assert (REPO / "config.yaml").read_text() == template.read_text()
    parse_config(template.read_text(), env=env)


def test_unknown_keys_inside_an_optional_section_get_a_hint_too():
    text = GOOD + 'digest:\n  from: "r <r@example.com>"\n  to: [o@example.com]\n  smtp: {host: localhost, security: none}\n  subjct: x\n'
    assert "digest.subjct: unknown key (did you mean 'subject'?)" in problems(text)


def test_alerting_sections_name_their_problems_with_key_paths():
    from monitor.config import ConfigError, parse_config

    text = """
notifiers: {slack: {kind: slack, webhook_url: "https://hooks.slack.com/services/T0/B0/x"}}
alerting:
  routes:
    - match: {business: Acme Cofee, language: [english]}
      notify: [slak]
  drafts:
    eng: {default: "Hi {author}"}
    pl: {default: "Dzień dobry {autor}"}
  source_health: {notify: [ops]}
topics:
  parking: {EN: [parking]}
businesses: [{name: Acme Coffee, notify: [slack]}]
"""
    try:
        parse_config(text, env={})
    except ConfigError as exc:
        problems = exc.problems
    else:
        raise AssertionError("accepted")
    assert problems == [
        "alerting.routes.0.match.business: no business named 'Acme Cofee' (did you mean 'Acme Coffee'?)",
        "alerting.routes.0.notify: no notifier named 'slak' (did you mean 'slack'?)",
        "alerting.source_health.notify: no notifier named 'ops'",
        "alerting.drafts.eng: 'eng' is not a two-letter language code (ISO 639-1, e.g. en, pl, el)",
        "topics.parking.EN: 'EN' is not a two-letter language code (ISO 639-1, e.g. en, pl, el)",
        "alerting.routes.0.match.language: 'english' is not a two-letter language code (ISO 639-1, e.g. en, pl, el)",
        "alerting.drafts.pl.default: unknown placeholder {autor}; use {author}, {business}, {site}",
    ]


def test_a_bad_mention_or_severity_in_a_route_is_refused():
    from monitor.config import ConfigError, parse_config

    for route, expected in [
        ('{match: {severity: urgent}}', "alerting.routes.0.match.severity.0: Input should be 'critical', 'high' or 'normal'"),
        ('{mention: "@here"}', "alerting.routes.0.mention: expected <!here>, <!channel>, <@U123ABC> or <!subteam^S123ABC>, got '@here'"),
        ('{cadence: weekly}', "alerting.routes.0.cadence: Input should be 'instant' or 'digest'"),
    ]:
        try:
            parse_config(f"alerting: {{routes: [{route}]}}", env={})
        except ConfigError as exc:
            assert exc.problems == [expected]
        else:
            raise AssertionError(route)


def test_a_secret_can_come_from_a_file_and_a_missing_one_is_named_not_shown(tmp_path):
    from monitor.config import ConfigError, parse_config

    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "slack").write_text("xoxb-from-a-file-123\n")
    text = 'notifiers: {slack: {kind: slack, token: "${file:secrets/slack}", channel: "#r"}}'
    config = parse_config(text, env={}, base_dir=tmp_path)
    assert config.notifiers["slack"].token.get_secret_value() == "xoxb-from-a-file-123"
    try:
        parse_config(text.replace("secrets/slack", "secrets/nope"), env={}, base_dir=tmp_path)
    except ConfigError as exc:
        assert exc.problems == [f"notifiers.slack.token: cannot read secret file {tmp_path}/secrets/nope: No such file or directory"]
    else:
        raise AssertionError("accepted")


# --- values that would break things, and secrets in URLs, as `repwatch config check` and `config show` say them ---


def config_check(tmp_path: Path, text: str, env: dict[str, str] | None = None):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return run_cli("config", "check", "--config", str(path), env={"SLACK_BOT_TOKEN": "xoxb-secret-1", **(env or {})})


@pytest.mark.parametrize(("extra", "problem"), [
    ('schedule: {digest: "0 0 31 2 *"}',
     "schedule.digest: '0 0 31 2 *' never fires: no date has that day in that month (like 31 February)"),
    ('schedule: {crawl: {cron: "0 6 30 2 *"}}',
     "schedule.crawl.cron: '0 6 30 2 *' never fires: no date has that day in that month (like 31 February)"),
    ("crawl: {timeout: 0}", "crawl.timeout: must be more than 0: a crawl running longer is stopped, like 15m"),
    ("crawl: {timeout: -5}", "crawl.timeout: must not be negative, got -5"),
    ("schedule: {deliver: 0}", "schedule.deliver: must be at least 1m: how often `repwatch deliver` runs, like 5m"),
    ("schedule: {deliver: 2s}", "schedule.deliver: must be at least 1m: how often `repwatch deliver` runs, like 5m"),
    ("crawl: {keep_runs: 99999999999d}", "crawl.keep_runs: at most 3650d (10 years), got '99999999999d'"),
    ("schedule: {jitter: 1.0e+300}", "schedule.jitter: at most 3650d (10 years), got 1e+300"),
    ("alerting: {baseline_window: .inf}", "alerting.baseline_window: at most 3650d (10 years), got inf"),
    ("alerting: {source_health: {silence: 0}}",
     "alerting.source_health.silence: must be more than 0: null turns the check off"),
])
def test_config_check_refuses_a_value_that_would_break_things_naming_its_key(tmp_path, extra, problem):
    checked = config_check(tmp_path, GOOD + extra + "\n")
    assert (checked.code, checked.stderr.strip()) == (1, f"{tmp_path / 'config.yaml'}: {problem}")


def test_a_cron_of_a_source_that_never_fires_is_named_by_its_path(tmp_path):
    text = GOOD.replace("url: https://www.trustpilot.com/review/acme.example",
                        "url: https://www.trustpilot.com/review/acme.example\n        schedule: {cron: '0 0 31 4 *'}")
    checked = config_check(tmp_path, text)
    assert checked.code == 1
    assert "source acme-tp: schedule.cron: '0 0 31 4 *' never fires" in checked.stderr


def test_a_rare_cron_and_short_durations_that_work_still_pass(tmp_path):
    text = GOOD + 'schedule: {digest: "0 8 29 2 *", deliver: 1m, jitter: 0}\ncrawl: {timeout: 1s}\n'
    checked = config_check(tmp_path, text)
    assert checked.code == 0, checked.stderr


DB_PASSWORD = "hunter@2secret/pw:x"  # an @, a slash and a colon: each would end the userinfo if written raw


def test_config_show_hides_the_password_of_every_url_the_database_s_first(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(GOOD + "database: postgresql+psycopg://app:${DB_PASSWORD}@db.internal:5432/repwatch\n"
                    "queue: {url: 'redis://:${DB_PASSWORD}@redis.internal:6379/0'}\n"
                    "notifiers:\n  team: {kind: slack, token: '${SLACK_BOT_TOKEN}', channel: '#reviews',\n"
                    "         api_url: 'https://bot:s3cret-api-key@slack.internal/api/'}\n")
    shown = run_cli("config", "show", "--config", str(path),
                    env={"SLACK_BOT_TOKEN": "xoxb-secret-1", "DB_PASSWORD": DB_PASSWORD})
    assert shown.code == 0, shown.stderr
    for piece in ("hunter", "2secret", "pw:x", "s3cret-api-key", "xoxb-secret-1"):
        assert piece not in shown.stdout, piece
    assert "database: postgresql+psycopg://app:***@db.internal:5432/repwatch" in shown.stdout
    assert "url: redis://:***@redis.internal:6379/0" in shown.stdout
    assert "api_url: https://bot:***@slack.internal/api/" in shown.stdout


def test_a_secret_landing_in_a_url_s_userinfo_is_percent_encoded(tmp_path):
    (tmp_path / "db_password").write_text(DB_PASSWORD + "\n")
    text = ("database: postgresql+psycopg://${DB_USER}:${file:db_password}@db.internal/repwatch\n"
            "queue: {url: 'redis://:${DB_PASSWORD}@redis.internal:6379/0'}\n")
    config = parse_config(text, env={"DB_USER": "app:1", "DB_PASSWORD": DB_PASSWORD}, base_dir=tmp_path)
    assert config.database == "postgresql+psycopg://app%3A1:hunter%402secret%2Fpw%3Ax@db.internal/repwatch"
    from sqlalchemy.engine import make_url

    url = make_url(config.database_url())
    assert (url.username, url.password, url.host) == ("app:1", DB_PASSWORD, "db.internal")
    assert config.queue is not None and config.queue.url == "redis://:hunter%402secret%2Fpw%3Ax@redis.internal:6379/0"
    # only the userinfo: the same variable in a path, a query or a plain value is taken as written
    plain = parse_config("data_dir: ${DIR}\n", env={"DIR": str(tmp_path / "a@b")})
    assert plain.data_dir == tmp_path / "a@b"


def test_a_raw_at_sign_in_a_written_database_password_is_refused_without_showing_it(tmp_path):
    checked = config_check(tmp_path, GOOD + "database: postgresql+psycopg://app:hunter@2secret@db.internal/repwatch\n")
    assert checked.code == 1
    (line,) = checked.stderr.strip().splitlines()
    assert line.startswith(f"{tmp_path / 'config.yaml'}: database: the password has an @ in it that is not written %40")
    assert "hunter" not in line and "2secret" not in line
