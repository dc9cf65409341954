"""Fixtures for the demo tests: a vhost name the load creates, removed whatever happens."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from flows.broker.errors import BrokerNotFound
from flows.broker.management_api import ManagementClient


@pytest.fixture
def demo_vhost(management_client: ManagementClient) -> Iterator[str]:
    """A vhost name that does not exist yet: loading a scenario there creates it."""
    name = f"flows-test-demo-{uuid.uuid4().hex[:10]}"
    yield name
    with contextlib.suppress(BrokerNotFound):
        management_client.remove_vhost(name)
