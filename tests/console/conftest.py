"""The console's browser tests: Playwright (pytest-playwright's fixtures, one browser for
the session) driving Debian's chromium, which scripts/setup.sh installs; Playwright cannot
download its own browsers here."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page

CHROMIUM = Path("/usr/bin/chromium")
#: Set to a folder to save the screenshots the README shows:
#: ROCD_CONSOLE_SCREENSHOTS=docs .venv/bin/python -m pytest tests/console (as root, for
#: the LAN test's peers view).
SCREENSHOTS = os.environ.get("ROCD_CONSOLE_SCREENSHOTS", "")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM}: the browser tests need Debian's chromium (scripts/setup.sh)")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM)}


@pytest.fixture(scope="session")
def base_url() -> str | None:
    """No base URL: each test opens its daemon's. (pytest-playwright 0.10's own fixture is
    written in a way pytest 9 warns about, and warnings are errors here.)"""
    return None


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1280, "height": 860}}


class PageErrors:
    """Uncaught exceptions and console errors of a page; a failed request is the
    console's own business (it shows the API's message), not an error of the page."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def watch(self, page: Page) -> Page:
        page.on("pageerror", lambda exc: self.seen.append(f"uncaught: {exc}"))
        page.on("console", self._console)
        return page

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error" and not re.match(r"Failed to load resource", msg.text):
            self.seen.append(f"console: {msg.text}")


@pytest.fixture
def page_errors(page: Page) -> Iterator[PageErrors]:
    """The test's page, watched: it ends with no error of its own."""
    errors = PageErrors()
    errors.watch(page)
    yield errors
    assert errors.seen == []


def screenshot(page: Page, name: str) -> None:
    """Save the page as the README's `name`.png when ROCD_CONSOLE_SCREENSHOTS is set."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.evaluate("document.getElementById('toasts').replaceChildren(); scrollTo(0, 0)")
        page.screenshot(path=str(Path(SCREENSHOTS) / f"console-{name}.png"), full_page=True)
