"""Fixtures for spider tests: the real saved pages in ../shared/fixtures/pages."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def real_pages(shared_fixtures: Path) -> Path:
    """../shared/fixtures/pages (skips where absent, as on a user's machine)."""
    return shared_fixtures / "pages"
