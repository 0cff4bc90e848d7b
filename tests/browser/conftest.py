"""Browser fixtures: Debian's Chromium driven by Playwright, a fresh profile per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tests.browser.dashboard import CHROMIUM, CHROMIUM_ARGS, Dashboard, start_dashboard
from tests.conftest import Relay
from tests.support.system import ensure_package


@pytest.fixture
def dashboard(relay: Relay) -> Dashboard:
    return start_dashboard(relay)


@pytest.fixture
def browser_context(tmp_path: Path) -> Iterator[BrowserContext]:
    executable = ensure_package(CHROMIUM, "chromium")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=tmp_path / "profile",
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(10_000)
        yield context
        context.close()


@pytest.fixture
def page(browser_context: BrowserContext) -> Page:
    return browser_context.pages[0] if browser_context.pages else browser_context.new_page()


def sign_in(page: Page, dashboard: Dashboard, staff_email: str) -> None:
    """Sign in the way a librarian does: ask for a link, open it from the email, confirm."""
    page.goto(dashboard.url + "/")
    page.fill("#email", staff_email)
    page.click("button[type=submit]")
    page.wait_for_selector("#link-sent")
    page.goto(dashboard.sign_in_link(staff_email))
    page.click("#confirm-sign-in")
    page.wait_for_url("**/queue")
