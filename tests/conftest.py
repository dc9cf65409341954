"""Shared fixtures: scratch vhosts on the real broker, a live dashboard, what several suites use.

Browser fixtures are in `tests/browser/conftest.py`; helpers tests import, in `tests/support/`.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings

from flows.broker.errors import BrokerNotFound
from flows.broker.management_api import ManagementClient
from flows.runtime import Runtime, runtime
from tests.support.accounts import TEST_PASSWORD, dashboard_users, make_user
from tests.support.broker_admin import create_vhost_for
from tests.support.dead_letters import Shop, fill_shop
from tests.support.live_server import LiveDashboard, database_url_for
from tests.support.publishing import DemoTopology, declare_demo_topology
from tests.support.vhosts import HOSTILE, make_vhost

# Playwright's sync API runs an event loop in the main thread; Django would otherwise
# refuse ORM calls made by tests that also drive a browser.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

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
    management_client.remove_vhost(name)


@pytest.fixture
def scratch_vhost(management_client: ManagementClient) -> Iterator[str]:
    """A vhost of one test's own, for tests that need an empty broker."""
    name = create_vhost_for(
        management_client, f"flows-test-{uuid.uuid4().hex[:10]}", dashboard_users()
    )
    yield name
    management_client.remove_vhost(name)


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
    """A signed-up user in the viewer role, committed so the live server sees it."""
    return make_user("alice", password=TEST_PASSWORD)


# --- what several suites share -----------------------------------------------------------------


@pytest.fixture
def demo(
    scratch_vhost: str, management_client: ManagementClient, fresh_runtime: Runtime
) -> DemoTopology:
    """The demo topology in a scratch vhost; the runtime (its publishers) stops before the vhost
    is deleted."""
    declare_demo_topology(management_client, scratch_vhost)
    return DemoTopology(vhost=scratch_vhost, client=management_client)


@pytest.fixture
def dlq_shop(scratch_vhost: str) -> Shop:
    """A shop whose rejected and expired orders are dead-lettered into `shop.dead`."""
    return fill_shop(scratch_vhost)


@pytest.fixture(scope="session")
def patient_client() -> Iterator[ManagementClient]:
    """A management client that waits for a busy broker (other suites share this one)."""
    with ManagementClient(
        settings.RABBITMQ_API_URL,
        settings.RABBITMQ_API_USER,
        settings.RABBITMQ_API_PASSWORD,
        timeout=60,
    ) as client:
        yield client


@pytest.fixture
def hostile_vhost(patient_client: ManagementClient) -> Iterator[str]:
    """A scratch vhost named with a slash, a percent-escape, markup, a space and ü."""
    name = make_vhost(patient_client, f"flows-test-{uuid.uuid4().hex[:6]} {HOSTILE} ü")
    yield name
    patient_client.remove_vhost(name)


@pytest.fixture
def roomy_vhost(patient_client: ManagementClient) -> Iterator[str]:
    """A scratch vhost for hundreds of objects: dropping them can take the broker a while."""
    name = make_vhost(patient_client, f"flows-test-{uuid.uuid4().hex[:10]}")
    yield name
    patient_client.remove_vhost(name)


@pytest.fixture
def loaded_topics(db: None, management_client: ManagementClient) -> Iterator[str]:
    """The `topics` scenario loaded for real into a vhost the load creates; removed after."""
    from flows.demo.loading import load, unload
    from flows.demo.scenario import load_scenario

    vhost = f"flows-test-demo-{uuid.uuid4().hex[:10]}"
    load(load_scenario("topics"), vhost=vhost, client=management_client)
    yield vhost
    with contextlib.suppress(BrokerNotFound):
        unload("topics", vhost=vhost, client=management_client)
    with contextlib.suppress(BrokerNotFound):
        management_client.remove_vhost(vhost)


@pytest.fixture
def link_maker(db: None):
    """A user who may make audience links: an admin (`flows.create_audience_links`)."""
    from tests.support.accounts import make_user

    return make_user("link-maker", role="admin", password=TEST_PASSWORD)


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
