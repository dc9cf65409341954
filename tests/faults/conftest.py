"""Fixtures for the fault tests: RabbitMQ nodes of the tests' own (`tests/support/own_broker.py`),
and the dashboard's code pointed at one of them.

One node serves the whole session (each start costs 7-15 s here); a test that stops, kills or
alarms it leaves it running and well again. The three-node cluster belongs to its module.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.cache import cache
from django.test import override_settings

from flows.runtime import runtime
from tests.support.own_broker import PASSWORD, USER, OwnNode


@pytest.fixture(scope="session")
def own_node() -> Iterator[OwnNode]:
    """A single node of the tests' own, with the management plugin, running."""
    node = OwnNode()
    try:
        yield node.started_and_answering()
    finally:
        node.delete()


@contextmanager
def dashboard_on(*, amqp_url: str, api_url: str) -> Iterator[None]:
    """The dashboard's code in this process pointed at another broker.

    The runtime's members (management client, topology cache, publishers, taps) read the
    broker's address once, when made: the runtime is emptied before and stopped after.
    """
    runtime().stop()
    cache.clear()  # the vhost names of the other broker
    with override_settings(
        AMQP_URL=amqp_url,
        RABBITMQ_API_URL=api_url,
        RABBITMQ_API_USER=USER,
        RABBITMQ_API_PASSWORD=PASSWORD,
    ):
        try:
            yield
        finally:
            runtime().stop()
            cache.clear()


@pytest.fixture
def on_own_node(own_node: OwnNode) -> Iterator[OwnNode]:
    """For one test: the dashboard's code in this process talks to `own_node`."""
    with dashboard_on(amqp_url=own_node.amqp_url, api_url=own_node.api_url):
        yield own_node


@pytest.fixture
def node_vhost(own_node: OwnNode) -> Iterator[str]:
    """A fresh vhost on `own_node`, deleted afterwards."""
    name = own_node.add_vhost(f"faults-{uuid.uuid4().hex[:8]}")
    yield name
    own_node.api("DELETE", f"vhosts/{name}")
