"""One topology snapshot serves every page, and every page predicts the same route.

The topology page (`/api/topology`), the publish page (its prediction and its route-key
suggestions) and the live page (its bindings-mode predictions) all read a vhost through
the runtime's one `topology_cache`. Against the real broker, with the real tap.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from urllib.parse import urlencode

import pytest
from django.test import Client

from flows.broker.management_api import ManagementClient
from flows.broker.naming import is_dashboard_object
from flows.runtime import runtime
from flows.topology.cache import TopologyCache
from flows.topology.reading import UnknownVhost
from tests.support.accounts import dashboard_users
from tests.support.broker_admin import create_vhost_for
from tests.support.communicators import connect, frames_until, run_with_tap
from tests.support.publishing import grant_publish
from tests.support.topology_definitions import binding, declare, exchange, queue
from tests.support.waiting import eventually_async

QUEUE_CHIP = re.compile(r'<span class="queue-chip">([^<]*)</span>')


@pytest.fixture
def shop(scratch_vhost: str, management_client: ManagementClient) -> str:
    """`orders` (topic): `order.eu.*` -> orders.eu; `order.us.*` goes nowhere."""
    declare(
        management_client,
        scratch_vhost,
        exchanges=[exchange("orders", "topic")],
        queues=[queue("orders.eu")],
        bindings=[binding("orders", "orders.eu", "order.eu.*")],
    )
    return scratch_vhost


@pytest.fixture
def publisher(user):
    """The signed-up user (committed: the live consumer runs in another thread), may publish."""
    grant_publish(user)
    return user


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def publish(client: Client, vhost: str, routing_key: str) -> dict:
    response = client.post(
        "/api/publish",
        data=json.dumps(
            {"vhost": vhost, "exchange": "orders", "routing_key": routing_key, "body": "{}"}
        ),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def live_row_for(frames: list[str], routing_key: str) -> str:
    """The live feed row of the message published with `routing_key`."""
    rows = [row for frame in frames for row in frame.split('<div class="live-row')[1:]]
    [row] = [row for row in rows if f'<span class="c-key">{routing_key}</span>' in row]
    return row


def live_prediction(row: str) -> list[str]:
    """The queues a bindings-mode row predicts ([] for a row that says UNROUTABLE)."""
    assert 'class="predicted"' in row, row
    queues = QUEUE_CHIP.findall(row)
    assert ("UNROUTABLE" in row) is (not queues), row
    return queues


async def watch_bindings_tap(vhost: str, user):
    """The live page's socket on a bindings-mode tap, once the tap runs."""
    communicator = connect(f"/ws/live/?{urlencode({'vhost': vhost, 'mode': 'bindings'})}", user)
    await communicator.connect()
    await frames_until(communicator, lambda frame: "tap: running" in frame, timeout=20)
    return communicator


async def row_of(communicator, routing_key: str) -> str:
    key = f'<span class="c-key">{routing_key}</span>'
    frames = await frames_until(communicator, lambda frame: key in frame, timeout=10)
    return live_row_for(frames, routing_key)


def test_one_read_serves_the_topology_publish_and_live_pages(shop: str, publisher, settings):
    settings.FLOWS_TOPOLOGY_MAX_AGE_S = 60  # the cache's age: longer than this test
    client = signed_in(publisher)
    topology_cache = runtime().topology_cache  # the pages' cache (run_with_tap stops it after)
    reads_before = topology_cache.reads[shop]

    # The topology page's graph reads the vhost...
    response = client.get("/api/topology", {"vhost": shop})
    assert response.status_code == 200
    assert "orders.eu" in {item["name"] for item in json.loads(response.content)["queues"]}
    assert topology_cache.reads[shop] == reads_before + 1

    # ...and within the cache's age that one read serves the publish page's suggestions,
    page = client.get("/publish/", {"vhost": shop})
    assert "orders" in page.context["suggestions"]["exchanges"]
    assert {"order.eu.*", "orders.eu"} <= set(page.context["suggestions"]["routing_keys"])

    async def run():
        communicator = await watch_bindings_tap(shop, publisher)
        # ...the publish page's prediction,
        answer = await asyncio.to_thread(publish, client, shop, "order.eu.paid")
        assert answer["predicted"]["queues"] == ["orders.eu"]
        # ...and the live page's prediction of the same message.
        assert live_prediction(await row_of(communicator, "order.eu.paid")) == ["orders.eu"]
        await communicator.disconnect()

    run_with_tap(run)
    assert topology_cache.reads[shop] == reads_before + 1


def test_publish_and_live_agree_on_routes_while_a_bindings_tap_runs(
    shop: str, publisher, settings, management_client: ManagementClient
):
    # Every request reads the broker afresh, so each prediction sees the tap's own bindings.
    settings.FLOWS_TOPOLOGY_MAX_AGE_S = 0
    client = signed_in(publisher)
    topology_cache = runtime().topology_cache

    async def run():
        communicator = await watch_bindings_tap(shop, publisher)
        # The tap's catch-all binding is on the broker, and in what the dashboard reads.
        tap_bindings = {
            (item["source"], item["routing_key"])
            for item in management_client.bindings(shop)
            if is_dashboard_object(item["destination"])
        }
        assert ("orders", "#") in tap_bindings
        await eventually_async(
            lambda: asyncio.to_thread(
                lambda: any(b.is_dashboard_object for b in topology_cache.topology(shop).bindings)
            ),
            what="the tap's binding in a read",
            interval=0.1,
        )

        agreed = {}
        for routing_key in ("order.eu.paid", "order.us.paid"):
            answer = await asyncio.to_thread(publish, client, shop, routing_key)
            live = live_prediction(await row_of(communicator, routing_key))
            assert answer["predicted"]["queues"] == live
            agreed[routing_key] = live
        # Both name the user's queue, never the tap's; the unrouted message stays unroutable.
        assert agreed == {"order.eu.paid": ["orders.eu"], "order.us.paid": []}

        # The publish page suggests nothing of the tap's either (its queue, its catch-all key).
        page = await asyncio.to_thread(client.get, "/publish/", {"vhost": shop})
        assert page.context["suggestions"]["routing_keys"] == ["order.eu.*", "orders.eu"]
        await communicator.disconnect()

    run_with_tap(run)


def test_a_failed_read_is_not_kept(management_client: ManagementClient, settings):
    settings.FLOWS_TOPOLOGY_MAX_AGE_S = 60
    cache = TopologyCache()
    name = f"flows-test-{uuid.uuid4().hex[:10]}"
    with pytest.raises(UnknownVhost):
        cache.topology(name)
    create_vhost_for(management_client, name, dashboard_users())
    try:
        # Well within the cache's age: the next request reads again, and finds the vhost.
        assert cache.topology(name).vhost == name
    finally:
        management_client.remove_vhost(name)
    assert cache.reads[name] == 2


def test_the_async_face_never_waits_unless_asked_for_a_first_read(shop: str, settings):
    settings.FLOWS_TOPOLOGY_MAX_AGE_S = 60
    cache = TopologyCache()

    async def run():
        assert await cache.latest(shop) is None  # a read starts; the caller goes on
        topology = await cache.latest(shop, wait=True)  # waits for that same read
        assert topology is not None and topology.queue("orders.eu") is not None
        assert await cache.latest(shop) is topology

    run_with_tap(run)
    assert cache.reads[shop] == 1
