"""Fixtures of the topology tests: a vhost whose very name is hostile."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings

from flows.broker.management_api import ManagementClient
from tests.conftest import amqp_username

HOSTILE = "a/b%2F<c>"


@pytest.fixture
def hostile_vhost(management_client: ManagementClient) -> Iterator[str]:
    """A scratch vhost named with a slash, a percent-escape, markup, a space and ü."""
    name = f"flows-test-{uuid.uuid4().hex[:6]} {HOSTILE} ü"
    management_client.create_vhost(name)
    for user in {settings.RABBITMQ_API_USER, amqp_username()}:
        management_client.set_permissions(name, user)
    yield name
    management_client.delete_vhost(name)


@pytest.fixture
def roomy_vhost() -> Iterator[str]:
    """A scratch vhost for hundreds of objects: dropping them can take the broker a while."""
    client = ManagementClient(
        settings.RABBITMQ_API_URL,
        settings.RABBITMQ_API_USER,
        settings.RABBITMQ_API_PASSWORD,
        timeout=60,
    )
    name = f"flows-test-{uuid.uuid4().hex[:10]}"
    client.create_vhost(name)
    for user in {settings.RABBITMQ_API_USER, amqp_username()}:
        client.set_permissions(name, user)
    yield name
    client.delete_vhost(name)
    client.close()
