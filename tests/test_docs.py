"""Docs that tests keep honest: every YAML block in the README and every shipped config is a valid config."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.config import parse_config

REPO = Path(__file__).resolve().parents[1]
ENV = {"SLACK_BOT_TOKEN": "xoxb-docs", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X",
       "REPWATCH_DB_PASSWORD": "pw", "SMTP_PASSWORD": "pw", "DEMO_SITE_URL": "http://127.0.0.1:8000", "DEMO_SLACK_API": "http://127.0.0.1:8001/api/",
       "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/x", "OPS_WEBHOOK_TOKEN": "t"}


def readme_yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_the_readme_has_yaml_blocks_to_check():
    assert readme_yaml_blocks()


@pytest.mark.parametrize("block", readme_yaml_blocks())
def test_every_readme_yaml_block_is_a_valid_config(block):
    parse_config(block, env=ENV)


@pytest.mark.parametrize("path", ["config.yaml", "demo/config.yaml", "monitor/templates/config.yaml"])
def test_shipped_configs_are_valid(path):
    parse_config((REPO / path).read_text(), env=ENV)


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()


def cli_verbs() -> list[str]:
    """Every command the `repwatch` Typer app has, sub-commands as "group verb"."""
    from monitor.cli import app

    def name(info) -> str:
        return info.name or info.callback.__name__.replace("_", "-")

    verbs = [name(c) for c in app.registered_commands]
    for group in app.registered_groups:
        verbs += [f"{group.name} {name(c)}" for c in group.typer_instance.registered_commands]
    return verbs


def test_every_cli_verb_is_in_the_readmes_command_list():
    readme = (REPO / "README.md").read_text()
    commands = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    verbs = cli_verbs()
    assert {"crawl", "run", "status", "handle", "reviews", "digest", "sources health"} <= set(verbs)
    missing = [verb for verb in verbs if f"repwatch {verb}" not in commands]
    assert not missing, f"not in README's Commands: {missing}"
