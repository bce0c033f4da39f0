"""config.yaml validation: what an operator sees when the file is wrong, and what a good file becomes."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, parse_config

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
    assert "businesses.0.notfy: unknown key (did you mean 'notify'?)" in found
    assert any(p.startswith("businesses.0.sources.0.ur1: unknown key (did you mean 'url'?)") for p in found)
    assert "businesses.0.sources.0.url: required key is missing" in found


def test_all_problems_are_reported_at_once():
    text = GOOD.replace("kind: trustpilot", "kind: trustpilott").replace("https://www", "ftp://www")
    text += "crawl:\n  max_pages: many\n"
    found = problems(text)
    assert len(found) == 3, found
    assert any("did you mean 'trustpilot'" in p for p in found)
    assert any(p.startswith("businesses.0.sources.0.url: must be an http:// or https:// URL") for p in found)
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
    assert "businesses.0.notify.0: no notifier named 'teem' (did you mean 'team'?)" in found
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
