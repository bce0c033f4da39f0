"""The crawl child: which spider class a plan's `kind` gets."""
from __future__ import annotations

import pytest

from spiders.registry import load_spiders
from spiders.runner import spider_class


def test_each_kind_gets_the_registered_spider():
    for name, spider in load_spiders().items():
        assert spider_class(name) is spider


def test_an_unknown_kind_is_a_key_error():
    with pytest.raises(KeyError):
        spider_class("no_such_site")
    with pytest.raises(KeyError):
        spider_class("../etc")


def test_the_child_imports_only_the_spider_it_runs():
    """Importing every spider module (extruct, BeautifulSoup, …) cost each crawl ~0.25 s of start-up."""
    import subprocess
    import sys

    code = (
        "import sys; from spiders.runner import spider_class; "
        "assert spider_class('trustpilot').__module__ == 'spiders.sites.trustpilot'; "
        "print(sorted(m for m in sys.modules if m.startswith(('spiders.sites.', 'spiders.generic.', 'extruct'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['spiders.sites.trustpilot']"
