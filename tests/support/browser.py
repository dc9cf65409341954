"""Driving Debian's Chromium: where it is, how it starts here, and signing in through the form."""

from __future__ import annotations

from tests.support.accounts import TEST_PASSWORD

CHROMIUM = "/usr/bin/chromium"
# What headless Chromium needs on this machine: no sandbox as root, no GPU, and no
# background traffic to Google's services (the network is closed; it would only fail).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def sign_in(page, base_url: str, *, username: str, password: str = TEST_PASSWORD) -> None:
    """Sign in through the real login form."""
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")
