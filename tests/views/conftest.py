"""Fixtures of the views: a test client signed in as a viewer, one signed
in as a user allowed to publish (the publish views), and the shop topology in a vhost of its
own (the topology views)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from flows.broker.management_api import ManagementClient
from flows.runtime import Runtime
from tests.support.accounts import make_user
from tests.support.live_server import free_port
from tests.support.publishing import grant_publish
from tests.support.topology_definitions import SHOP_BINDINGS, SHOP_EXCHANGES, SHOP_QUEUES, declare
from tests.support.vhosts import make_vhost


@pytest.fixture
def publisher_user(db: None):
    user = make_user("pub", role=None, password="pw-for-tests-1")
    grant_publish(user)
    return user


@pytest.fixture
def signed_in(client, django_user_model):
    """A test client signed in as a viewer (reading pages and the API), who may not publish."""
    client.force_login(make_user("reader"))
    return client


@pytest.fixture
def api(client, publisher_user):
    """A test client signed in as a user allowed to publish; `.post_json(data)`."""
    client.force_login(publisher_user)

    def post_json(data, path="/api/publish"):
        import json

        return client.post(path, data=json.dumps(data), content_type="application/json")

    client.post_json = post_json
    return client


@pytest.fixture(scope="module")
def shop(patient_client: ManagementClient) -> Iterator[str]:
    """A vhost holding the shop (`topology_definitions.SHOP_*`), shared by a module's tests,
    which only read it (one vhost instead of one per test)."""
    vhost = make_vhost(patient_client, f"flows-test-{uuid.uuid4().hex[:10]}")
    declare(
        patient_client, vhost, exchanges=SHOP_EXCHANGES, queues=SHOP_QUEUES, bindings=SHOP_BINDINGS
    )
    yield vhost
    patient_client.remove_vhost(vhost)


@pytest.fixture
def api_down(settings, fresh_runtime: Runtime) -> int:
    """The management API points at a closed port for the duration of a test.

    The runtime's client follows: it is made from the settings on first use after
    `fresh_runtime`, and stopped before `settings` puts the old ones back.
    """
    closed = free_port()
    settings.RABBITMQ_API_URL = f"http://127.0.0.1:{closed}/"
    return closed
