"""Fixtures of the browser tests: Debian's Chromium, and a page signed in to the live dashboard."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, sign_in
from tests.support.live_server import LiveDashboard

# What a page shows, it shows eventually: Playwright's `expect` waits for it. Its 5 s default
# is a speed target (those live in benchmarks/), and a loaded 2-core machine misses it.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """Playwright drives Debian's Chromium; it cannot download its own browser here."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": CHROMIUM_FLAGS,
    }


@pytest.fixture
def signed_in_page(page, live_dashboard: LiveDashboard, user):
    """A browser page signed in to the live dashboard as `user`."""
    sign_in(page, live_dashboard.url, username=user.username)
    return page
