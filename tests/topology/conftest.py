"""Fixtures of the topology tests: vhosts (one with a hostile name) made by a patient client,
and the shop topology (`definitions.SHOP_*`) in a vhost of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings

from flows.broker.management_api import ManagementClient
from tests.broker_admin import create_vhost_for, delete_vhost
from tests.conftest import dashboard_users
from tests.topology.definitions import SHOP_BINDINGS, SHOP_EXCHANGES, SHOP_QUEUES, declare

HOSTILE = "a/b%2F<c>"


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


def make_vhost(client: ManagementClient, name: str) -> str:
    return create_vhost_for(client, name, dashboard_users())


@pytest.fixture
def hostile_vhost(patient_client: ManagementClient) -> Iterator[str]:
    """A scratch vhost named with a slash, a percent-escape, markup, a space and ü."""
    name = make_vhost(patient_client, f"flows-test-{uuid.uuid4().hex[:6]} {HOSTILE} ü")
    yield name
    delete_vhost(patient_client, name)


@pytest.fixture
def roomy_vhost(patient_client: ManagementClient) -> Iterator[str]:
    """A scratch vhost for hundreds of objects: dropping them can take the broker a while."""
    name = make_vhost(patient_client, f"flows-test-{uuid.uuid4().hex[:10]}")
    yield name
    delete_vhost(patient_client, name)


@pytest.fixture(scope="module")
def shop(patient_client: ManagementClient) -> Iterator[str]:
    """A vhost holding the shop (`definitions.SHOP_*`), shared by a module's tests, which
    only read it (one vhost instead of one per test)."""
    vhost = make_vhost(patient_client, f"flows-test-{uuid.uuid4().hex[:10]}")
    declare(
        patient_client, vhost, exchanges=SHOP_EXCHANGES, queues=SHOP_QUEUES, bindings=SHOP_BINDINGS
    )
    yield vhost
    delete_vhost(patient_client, vhost)
