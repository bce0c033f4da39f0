"""Docs that tests keep honest: README.md and docs/*.md against the config model, the registries and the CLI.

YAML examples: every ```yaml block in README.md and docs/*.md is parsed by `monitor.config.parse_config`, with the
${VARS} it names taken from ENV below. A block is a whole config.yaml, unless its first line is a fragment marker
that names the minimal config it belongs in:

    # fragment: sources    the block is entries of one business's `sources:` list
                           (wrapped as `businesses: [{name: Example, sources: <block>}]`)

A fragment is indented into its wrapper (FRAGMENTS) and then parsed like a whole config; a marker not in FRAGMENTS
fails. Blocks in other languages (sh, cron, ini) are not parsed. Test ids are `file:line` of the block's fence.

Tables: the first table after "## Source kinds" in docs/sources.md and after "## Notifier kinds" in docs/alerts.md
must list, in their first column, exactly the kinds of `spiders.registry.load_spiders()` and `alerts.base.NOTIFIERS`.

CLI: docs/cli.md has a "## repwatch VERB" section for every verb of the `repwatch` app (and none for a verb that does
not exist), and each section names every long option of its verb.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.config import parse_config

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ENV = {"SLACK_BOT_TOKEN": "xoxb-docs", "SLACK_APP_TOKEN": "xapp-docs", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X",
       "REPWATCH_DB_PASSWORD": "pw", "SMTP_PASSWORD": "pw", "DEMO_SITE_URL": "http://127.0.0.1:8000",
       "DEMO_SLACK_API": "http://127.0.0.1:8001/api/", "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/x",
       "TEAMS_WEBHOOK_URL": "https://example.webhook.office.com/webhookb2/x", "OPS_WEBHOOK_TOKEN": "t",
       "GOOGLE_CLIENT_ID": "1234.apps.googleusercontent.com", "GOOGLE_CLIENT_SECRET": "docs-secret",
       "REPWATCH_WEB_SECRET": "s" * 40}
README_LIMIT = 8 * 1024  # bytes: what it is, the two commands, a quick start, where to read on; the rest in docs/

# marker -> (the text the fragment goes under, the indent of its lines there)
FRAGMENTS = {
    "sources": ("businesses:\n  - name: Example\n    sources:\n", 6),
}
MARKER = re.compile(r"#\s*fragment:\s*(\S+)\s*\n")


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def yaml_blocks() -> list[pytest.param]:
    blocks = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"^```yaml\n(.*?)^```", text, flags=re.M | re.S):
            line = text.count("\n", 0, match.start()) + 1
            blocks.append(pytest.param(match[1], id=f"{relative(path)}:{line}"))
    return blocks


def as_config(block: str) -> str:
    """The block as a whole config.yaml: itself, or a fragment indented into the wrapper its marker names."""
    marker = MARKER.match(block)
    if marker is None:
        return block
    if marker[1] not in FRAGMENTS:
        raise ValueError(f"unknown fragment marker {marker[1]!r}; known: {', '.join(FRAGMENTS)}")
    wrapper, indent = FRAGMENTS[marker[1]]
    body = block[marker.end():]
    return wrapper + "".join(" " * indent + line if line.strip() else line for line in body.splitlines(keepends=True))


def test_readme_and_docs_have_yaml_blocks_to_check():
    ids = [block.id for block in yaml_blocks()]
    assert any(i.startswith("README.md:") for i in ids)
    assert any(i.startswith("docs/") for i in ids)


@pytest.mark.parametrize("block", yaml_blocks())
def test_every_yaml_block_is_a_valid_config(block):
    parse_config(as_config(block), env=ENV)


def test_a_fragment_is_wrapped_and_an_unknown_marker_fails():
    fragment = "# fragment: sources\n- name: shop\n  kind: schema_org\n  url: https://example.com/reviews\n"
    config = parse_config(as_config(fragment), env=ENV)
    assert [s.name for _, s in config.sources()] == ["shop"]
    with pytest.raises(ValueError, match="unknown fragment marker 'source'"):
        as_config("# fragment: source\n- name: shop\n")


@pytest.mark.parametrize("path", ["config.yaml", "demo/config.yaml", "monitor/templates/config.yaml"])
def test_shipped_configs_are_valid(path):
    parse_config((REPO / path).read_text(), env=ENV)


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_the_readme_stays_short():
    size = len((REPO / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes (limit {README_LIMIT}): move detail to docs/*.md"


# --- kind tables ------------------------------------------------------------------------------------------------


def table_kinds(path: Path, heading: str) -> list[str]:
    """The first column of the first table after `heading`, backticks removed."""
    text = path.read_text(encoding="utf-8")
    assert f"\n{heading}\n" in text, f"{relative(path)} has no {heading!r}"
    section = text.split(f"\n{heading}\n", 1)[1]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return [row.split("|")[1].strip().strip("`") for row in rows[2:]]  # past the header and its --- line


def test_the_source_kind_table_lists_exactly_the_registered_spiders():
    from spiders.registry import load_spiders

    kinds = table_kinds(REPO / "docs" / "sources.md", "## Source kinds")
    assert len(kinds) == len(set(kinds)), f"listed twice: {kinds}"
    assert sorted(kinds) == sorted(load_spiders())


def test_the_notifier_kind_table_lists_exactly_the_registered_notifiers():
    from alerts.base import NOTIFIERS

    kinds = table_kinds(REPO / "docs" / "alerts.md", "## Notifier kinds")
    assert len(kinds) == len(set(kinds)), f"listed twice: {kinds}"
    assert sorted(kinds) == sorted(NOTIFIERS)


# --- the CLI ----------------------------------------------------------------------------------------------------


def cli_commands() -> dict[str, object]:
    """Every command of the `repwatch` app by its name as typed ("crawl", "sources health"), sub-commands included."""
    import typer.main

    from monitor.cli import app

    commands: dict[str, object] = {}

    def walk(command, prefix: str) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            if getattr(sub, "commands", None) is not None:
                walk(sub, f"{prefix}{name} ")
            else:
                commands[f"{prefix}{name}"] = sub

    walk(typer.main.get_command(app), "")
    return commands


def cli_sections() -> dict[str, str]:
    """docs/cli.md's "## repwatch VERB" sections, by verb."""
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    sections = {}
    for part in text.split("\n## ")[1:]:
        heading, _, body = part.partition("\n")
        assert heading.startswith("repwatch "), f"docs/cli.md: a section that is not a verb: {heading!r}"
        sections[heading.removeprefix("repwatch ").strip()] = body
    return sections


def test_every_cli_verb_has_its_section_in_docs_cli():
    verbs = set(cli_commands())
    assert {"crawl", "run", "status", "handle", "reviews", "digest", "sources health", "alerts test"} <= verbs
    documented = set(cli_sections())
    assert not verbs - documented, f"not in docs/cli.md: {sorted(verbs - documented)}"
    assert not documented - verbs, f"docs/cli.md documents verbs that do not exist: {sorted(documented - verbs)}"


def test_every_cli_option_is_in_its_verbs_section():
    sections = cli_sections()
    missing = []
    for verb, command in cli_commands().items():
        for param in command.params:
            if getattr(param, "param_type_name", None) != "option":
                continue
            for option in param.opts:
                if option.startswith("--") and not re.search(rf"{re.escape(option)}\b", sections.get(verb, "")):
                    missing.append(f"repwatch {verb} {option}")
    assert not missing, f"options not in their verb's section of docs/cli.md: {missing}"


# --- links ------------------------------------------------------------------------------------------------------


def without_code(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", without_code(path.read_text(encoding="utf-8")), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("path", DOCS, ids=relative)
def test_relative_links_lead_somewhere(path):
    text = without_code(path.read_text(encoding="utf-8"))
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(target)
    assert not broken, f"{relative(path)}: links that lead nowhere: {broken}"
