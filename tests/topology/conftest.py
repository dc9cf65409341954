"""Fixtures of the topology tests: vhosts (one with a hostile name) made by a patient client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings

from flows.broker.management_api import ManagementClient
from tests.conftest import amqp_username

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
    client.create_vhost(name)
    for user in {settings.RABBITMQ_API_USER, amqp_username()}:
        client.set_permissions(name, user)
    return name


@pytest.fixture
def hostile_vhost(patient_client: ManagementClient) -> Iterator[str]:
    """A scratch vhost named with a slash, a percent-escape, markup, a space and ü."""
    name = make_vhost(patient_client, f"flows-test-{uuid.uuid4().hex[:6]} {HOSTILE} ü")
    yield name
    patient_client.delete_vhost(name)


@pytest.fixture
def roomy_vhost(patient_client: ManagementClient) -> Iterator[str]:
    """A scratch vhost for hundreds of objects: dropping them can take the broker a while."""
    name = make_vhost(patient_client, f"flows-test-{uuid.uuid4().hex[:10]}")
    yield name
    patient_client.delete_vhost(name)


@pytest.fixture(scope="session", autouse=True)
def close_topology_client() -> Iterator[None]:
    """The process-wide client for whole-vhost reads is closed with the test session."""
    from flows.topology import get_topology_client

    yield
    if get_topology_client.cache_info().currsize:
        get_topology_client().close()
    get_topology_client.cache_clear()


@pytest.fixture(autouse=True)
def fresh_topology_snapshots() -> Iterator[None]:
    """No test sees a vhost snapshot another test left (see flows.topology_cache)."""
    from flows import topology_cache

    topology_cache.forget()
    yield
    topology_cache.forget()
