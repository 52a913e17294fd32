"""Fixtures of the real-browser tests (see ``harness.py`` for why they are built this way).

- ``browser`` (session): one headless Debian Chromium per test session (per xdist worker).
- ``gateway`` (module): a demo gateway at ``https://localhost:<port>``, its CA trusted by the
  browser; overrides the top-level one, so ``tests.conftest`` helpers work with it too.
- ``new_context(width=1280)`` (function): a factory of fresh browser contexts (one official's
  browser each) at 1280×800 or 375×740; console errors, uncaught exceptions and CSP
  violations of their pages fail the test at teardown (``page_problems.allow`` for expected ones).
- ``page``: one page of a 1280-wide context.
- ``officials`` (module): :class:`tests.browser.harness.Officials` on the module's gateway.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.browser.harness import (
    CHROMIUM,
    WIDE,
    Officials,
    PageProblems,
    launch_args,
    new_browser_home,
    off_loop,
    open_context,
    start_browser_gateway,
)
from tests.conftest import Gateway, _create_database


@pytest.fixture(scope="session")
def browser_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The browser's ``HOME``: its NSS database is where each gateway's CA gets trusted."""
    return new_browser_home(tmp_path_factory.mktemp("browser-home"))


@pytest.fixture(scope="module")
def browser(browser_home: Path, template_database: str) -> Iterator[Browser]:
    """Headless Chromium, started after the template database exists: that fixture calls
    ``asyncio.run``, which Playwright's running loop would forbid afterwards. One a module
    (a launch takes about 1.6 s): Playwright's loop must be gone again before the worker
    runs a module outside tests/browser, whose fixtures call ``asyncio.run`` too."""
    assert CHROMIUM.exists(), "Debian chromium is missing: ./dev.sh test installs it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=launch_args(),
            env={**os.environ, "HOME": str(browser_home)},
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def module_db_url(pg_server_url: str, template_database: str) -> str:
    """As the top-level fixture, off Playwright's loop (it calls ``asyncio.run``)."""
    return off_loop(_create_database, pg_server_url, template_database)


@pytest.fixture(scope="module")
def gateway(
    module_db_url: str, tmp_path_factory: pytest.TempPathFactory, browser_home: Path
) -> Iterator[Gateway]:
    running = start_browser_gateway(module_db_url, tmp_path_factory.mktemp("gw"), browser_home)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def officials(gateway: Gateway) -> Iterator[Officials]:
    made = Officials(gateway)
    yield made
    made.close()


@pytest.fixture
def page_problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def new_context(
    browser: Browser, gateway: Gateway, page_problems: PageProblems
) -> Iterator[Callable[..., BrowserContext]]:
    contexts: list[BrowserContext] = []

    def make(width: int = WIDE) -> BrowserContext:
        context = open_context(browser, gateway, page_problems, width)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    unexpected = page_problems.unexpected()
    assert not unexpected, "console errors or CSP violations:\n" + "\n".join(unexpected)


@pytest.fixture
def page(new_context: Callable[..., BrowserContext]) -> Page:
    return new_context().new_page()
