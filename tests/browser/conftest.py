"""Fixtures of the browser tests: Debian's Chromium, a page signed in to the live dashboard,
and, for every test, a check that no page broke the Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, expect

from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, sign_in
from tests.support.live_server import LiveDashboard

# What a page shows, it shows eventually: Playwright's `expect` waits for it. Its 5 s default
# is a speed target (those live in benchmarks/), and a loaded 2-core machine misses it.
expect.set_options(timeout=15_000)

# Each page reports what its Content-Security-Policy blocked. (Playwright injects this and
# the binding through the DevTools protocol, which the policy does not govern.)
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__flowsCspViolations = (window.__flowsCspViolations || 0) + 1;
  window.__flowsReportCspViolation({
    directive: event.violatedDirective,
    blocked: event.blockedURI,
    source: `${event.sourceFile}:${event.lineNumber}`,
    sample: event.sample,
  });
});
"""


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """Playwright drives Debian's Chromium; it cannot download its own browser here."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": CHROMIUM_FLAGS,
    }


@pytest.fixture(autouse=True)
def no_csp_violation(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Fail a test during which any page of its browser context broke the policy.

    The dashboard's pages run under a strict policy (no inline script or style): a
    violation means something on a page does not work as written, so it is a failure
    wherever it happens, also in a test about something else.
    """
    violations: list[str] = []
    if "context" not in request.fixturenames and "page" not in request.fixturenames:
        yield violations
        return
    context: BrowserContext = request.getfixturevalue("context")

    def reported(_source: Any, violation: dict) -> None:
        violations.append(f"{violation['directive']} blocked {violation['blocked']!r} {violation}")

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(f"console: {message.text}")

    context.expose_binding("__flowsReportCspViolation", reported)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    context.on("console", console)
    yield violations
    assert violations == [], "the Content-Security-Policy was violated"


@pytest.fixture
def signed_in_page(page, live_dashboard: LiveDashboard, user):
    """A browser page signed in to the live dashboard as `user`."""
    sign_in(page, live_dashboard.url, username=user.username)
    return page
