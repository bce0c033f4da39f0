"""The spider registry: complete, strict about broken plugins, and DESIGN convention 3 for every spider."""
from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from spiders.base import SPIDERS, ReviewSpider
from spiders.registry import load_spiders

TESTS = Path(__file__).parent


def test_loads_our_spiders():
    spiders = load_spiders()
    assert {"trustpilot", "schema_org"} <= set(spiders)
    assert list(spiders).index("trustpilot") < list(spiders).index("schema_org")  # site spiders first
    assert all(issubclass(cls, ReviewSpider) and not cls.abstract for cls in spiders.values())


@pytest.mark.parametrize("name", sorted(load_spiders()))
def test_convention_3_name_module_test_and_fixture_agree(name: str):
    """Spider `name` = its module's name = tests/spiders/test_<name>.py = a page tests/spiders/pages/<name>*."""
    spider = load_spiders()[name]
    assert spider.__module__.rsplit(".", 1)[-1] == name, f"{spider.__qualname__} lives in {spider.__module__}"
    assert (TESTS / f"test_{name}.py").is_file(), f"missing tests/spiders/test_{name}.py"
    assert list((TESTS / "pages").glob(f"{name}*")), f"missing a page tests/spiders/pages/{name}*"
    assert (spider.__doc__ or "").strip(), f"{spider.__qualname__} needs a docstring: it is the user-facing help"


def test_duplicate_name_fails_at_class_creation():
    before = dict(SPIDERS)
    with pytest.raises(TypeError, match="registered twice"):
        type("AnotherTrustpilot", (ReviewSpider,), {"name": "trustpilot", "__module__": "tests.fake"})
    assert SPIDERS == before


def test_missing_name_fails_unless_abstract():
    with pytest.raises(TypeError, match="must set `name`"):
        type("Nameless", (ReviewSpider,), {"__module__": "tests.fake"})
    platform = type("PlatformBase", (ReviewSpider,), {"abstract": True, "__module__": "tests.fake"})
    assert platform not in SPIDERS.values()


def test_a_broken_plugin_is_an_error_not_a_gap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    package = tmp_path / "broken_plugins"
    (package / "nested").mkdir(parents=True)
    (package / "__init__.py").write_text('"""Test plugins."""\n')
    (package / "nested" / "__init__.py").write_text("import module_that_does_not_exist\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="module_that_does_not_exist"):
        load_spiders(["broken_plugins"])

    (package / "nested" / "__init__.py").write_text('"""Fine now."""\n')
    (package / "nested" / "oops.py").write_text(textwrap.dedent("""
        raise RuntimeError("plugin failed at import")
    """))
    for module in [m for m in sys.modules if m.startswith("broken_plugins")]:
        monkeypatch.delitem(sys.modules, module)
    importlib.invalidate_caches()
    with pytest.raises(RuntimeError, match="plugin failed at import"):
        load_spiders(["broken_plugins"])
