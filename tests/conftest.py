"""Shared fixtures: a scratch vhost on the real broker, a live dashboard, a real browser."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import unquote, urlsplit

import pytest
from django.conf import settings

from flows.broker.management_api import ManagementClient
from flows.runtime import Runtime, runtime
from tests.broker_admin import create_vhost_for, delete_vhost
from tests.live_server import LiveDashboard, database_url_for

# Playwright's sync API runs an event loop in the main thread; Django would otherwise
# refuse ORM calls made by tests that also drive a browser.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

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

TEST_PASSWORD = "correct horse battery staple"


# --- the broker ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def management_client() -> Iterator[ManagementClient]:
    # A client of the fixture's own: tests that repoint the runtime's (an outage, say) stop
    # it, and must not close the one every other fixture uses.
    client = ManagementClient(
        settings.RABBITMQ_API_URL,
        settings.RABBITMQ_API_USER,
        settings.RABBITMQ_API_PASSWORD,
        # Setting up and deleting vhosts is not what is under test: on a busy shared broker
        # (deleting a vhost with queues in it) it may take longer than a page would wait.
        timeout=max(settings.RABBITMQ_API_TIMEOUT, 30.0),
    )
    yield client
    client.close()


def amqp_username() -> str:
    return unquote(urlsplit(settings.AMQP_URL).username or "guest")


def dashboard_users() -> set[str]:
    """The users the dashboard connects as: a test's vhost grants them everything."""
    return {settings.RABBITMQ_API_USER, amqp_username()}


@pytest.fixture(scope="session")
def broker_vhost(management_client: ManagementClient) -> Iterator[str]:
    """A fresh vhost for this test run, deleted afterwards: tests never touch `/`."""
    name = create_vhost_for(
        management_client,
        f"flows-test-{uuid.uuid4().hex[:10]}",
        dashboard_users(),
        description="scratch vhost of a flows test run",
    )
    yield name
    delete_vhost(management_client, name)


@pytest.fixture
def scratch_vhost(management_client: ManagementClient) -> Iterator[str]:
    """A vhost of one test's own, for tests that need an empty broker."""
    name = create_vhost_for(
        management_client, f"flows-test-{uuid.uuid4().hex[:10]}", dashboard_users()
    )
    yield name
    delete_vhost(management_client, name)


# --- the process's runtime ---------------------------------------------------------------------


@pytest.fixture
def fresh_runtime() -> Iterator[Runtime]:
    """The process's runtime with nothing in it, stopped again after the test.

    For tests that start publishers or taps in this process, or that change settings the
    runtime's members read once (the management API's address): what they start stops
    (request this fixture after the vhost it works in, so it stops before the vhost goes),
    and the next test builds its own.
    """
    runtime().stop()
    yield runtime()
    runtime().stop()


# --- the dashboard, served for real -------------------------------------------------------------


@pytest.fixture(scope="session")
def live_dashboard(django_db_setup: None, django_db_blocker) -> Iterator[LiveDashboard]:
    """The dashboard served by daphne, against the real broker and the test database."""
    from django.db import connection

    with django_db_blocker.unblock():
        database_url = database_url_for(connection.settings_dict)
    server = LiveDashboard(database_url=database_url).start()
    yield server
    server.stop()


@pytest.fixture
def start_dashboard(
    django_db_setup: None, django_db_blocker
) -> Iterator[Callable[..., LiveDashboard]]:
    """Start an extra dashboard with its own environment (another broker URL, say)."""
    from django.db import connection

    servers: list[LiveDashboard] = []

    def start(**env: str) -> LiveDashboard:
        with django_db_blocker.unblock():
            database_url = database_url_for(connection.settings_dict)
        server = LiveDashboard(database_url=database_url, env=env).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def user(transactional_db: None):
    """A signed-up user, committed so the live server sees it."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username="alice", password=TEST_PASSWORD)


# --- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """Playwright drives Debian's Chromium; it cannot download its own browser here."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": CHROMIUM_FLAGS,
    }


def sign_in(page, base_url: str, *, username: str, password: str = TEST_PASSWORD) -> None:
    """Sign in through the real login form."""
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


@pytest.fixture
def signed_in_page(page, live_dashboard: LiveDashboard, user):
    """A browser page signed in to the live dashboard as `user`."""
    sign_in(page, live_dashboard.url, username=user.username)
    return page


# --- test order ---------------------------------------------------------------------------------


def _drives_a_browser(item: pytest.Item) -> bool:
    fixtures = getattr(item, "fixturenames", ())
    return bool(
        item.get_closest_marker("browser")
        or {"page", "browser", "context", "signed_in_page"} & set(fixtures)
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run every browser test after every other test.

    Playwright's sync API keeps an asyncio loop running in the main thread for the rest of the
    session once a browser has started; any later test that calls `async_to_sync` (Channels
    communicators, the channel layer) would then fail with "You cannot use AsyncToSync in the
    same thread as an async event loop". The sort is stable, so modules stay together.
    """
    items.sort(key=_drives_a_browser)
