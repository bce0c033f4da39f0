"""Headless Chromium for sources with `render: true`: the crawler settings, the request meta and the launch checks."""
# scrapy-playwright ships no type information (no py.typed): its download handler, subclassed below, is Any to mypy.
# mypy: allow-subclassing-any
from __future__ import annotations

import functools
import importlib.util
import os
from typing import Any

from spiders.settings import DOWNLOAD_HANDLERS

# The flags the machine probe used (docs of this machine kind): without the background-networking ones Chromium
# keeps calling Google's hosts, which a closed network refuses. Playwright adds --headless and a fresh profile dir.
CHROMIUM_ARGS = (
    "--no-sandbox",  # the sandbox cannot start as root (containers, CI); Playwright passes it too
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
NAVIGATION_TIMEOUT_MS = 30_000  # as DOWNLOAD_TIMEOUT for plain fetches
SETTLE_TIMEOUT_MS = 10_000  # after `load`, how long to wait for the page's own requests (XHR/fetch) to go quiet


def render_problem(browser_path: str) -> str | None:
    """Why a rendered source cannot run here, as one line, or None when it can."""
    if importlib.util.find_spec("scrapy_playwright") is None:
        return "render: scrapy-playwright is not installed (install the render extra, see docs/operations.md#installing)"
    if not (os.path.isfile(browser_path) and os.access(browser_path, os.X_OK)):
        return f"render: no Chromium at {browser_path} (apt-get install chromium)"
    return None


def render_settings(browser_path: str) -> dict[str, Any]:
    """Per-crawler settings: pages go through Chromium (robots.txt still through Scrapy's own HTTP client)."""
    handler = _handler_class()
    return {
        # Replaces the whole setting: the other schemes stay off (spiders/settings.py).
        "DOWNLOAD_HANDLERS": {**DOWNLOAD_HANDLERS, "http": handler, "https": handler},
        "PLAYWRIGHT_BROWSER_TYPE": "chromium",
        "PLAYWRIGHT_LAUNCH_OPTIONS": {"executable_path": browser_path, "headless": True, "args": list(CHROMIUM_ARGS)},
        "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": NAVIGATION_TIMEOUT_MS,
        "PLAYWRIGHT_ABORT_REQUEST": "spiders.render.skip_resource",
        # The cache stores the rendered DOM under the HTML shell's validators: a 304 for an unchanged shell would
        # replay old reviews while the data the script loads has changed. Rendered pages are always fetched whole.
        "HTTPCACHE_ENABLED": False,
    }


_SKIPPED_RESOURCES = frozenset({"image", "media", "font"})


def skip_resource(request: Any) -> bool:
    """Images, video and fonts never hold reviews: not fetching them spares the site and the crawl."""
    return request.resource_type in _SKIPPED_RESOURCES


class RenderError(Exception):
    """A page Chromium could not render, in one line (the run's error and the CLI show it as is)."""


@functools.cache
def _handler_class() -> type:
    """scrapy-playwright's download handler, with its errors cut to one line.

    Playwright's messages carry the browser's whole command line and a call log over dozens of lines; the first
    line says what happened ("Page.goto: net::ERR_CONNECTION_REFUSED at ...", "Timeout 30000ms exceeded").
    Defined on first use: this module must import without scrapy-playwright so that render_problem can say so.
    """
    from playwright.async_api import Error as PlaywrightError
    from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler

    class OneLineErrorsHandler(ScrapyPlaywrightDownloadHandler):
        async def download_request(self, request: Any, *args: Any) -> Any:
            try:
                return await super().download_request(request, *args)
            except PlaywrightError as exc:
                lines = (exc.message or str(exc)).strip().splitlines()
                first = lines[0] if lines else type(exc).__name__
                if first.startswith("BrowserType.launch"):
                    path = self.config.launch_options.get("executable_path")
                    first = f"Chromium at {path} did not start ({first})"
                raise RenderError(f"render: {first}") from None

    return OneLineErrorsHandler


def render_meta() -> dict[str, Any]:
    """Request meta that sends one page through Chromium: wait for `load`, then for the network to settle."""
    from scrapy_playwright.page import PageMethod

    return {
        "playwright": True,
        "playwright_page_goto_kwargs": {"wait_until": "load"},
        "playwright_page_methods": [PageMethod(settle, SETTLE_TIMEOUT_MS)],
    }


async def settle(page: Any, timeout_ms: float) -> None:
    """Wait until no request has been in flight for 500 ms, or `timeout_ms`; a page that polls forever (analytics,
    live chat) is then read as it stands rather than failed."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:
        await page.wait_for_load_state("networkidle", timeout=timeout_ms)
    except PlaywrightTimeout:
        pass
