"""Loading and unloading scenarios on the real broker: exactly what was created goes again."""

from __future__ import annotations

import dataclasses
from typing import Any

import pika
import pytest

from flows.broker.amqp import open_blocking_connection
from flows.broker.errors import BrokerError, BrokerNotFound
from flows.broker.management_api import ManagementClient, api_path
from flows.demo.loading import LoadRefused, dashboard_users, find_load, load, unload
from flows.demo.scenario import QueueSpec, available_scenarios, load_scenario
from flows.models import DemoLoad

pytestmark = pytest.mark.django_db

# What `GET /api/definitions` holds per vhost (vhosts and permissions name it as `name`/`vhost`).
PER_VHOST = (
    "queues",
    "exchanges",
    "bindings",
    "policies",
    "parameters",
    "permissions",
    "topic_permissions",
)


def vhost_definitions(client: ManagementClient, vhost: str) -> dict[str, Any]:
    """The broker's definitions filtered to one vhost, in an order that compares."""
    everything = client.get(api_path("definitions"))
    mine: dict[str, Any] = {
        "vhosts": [v for v in everything.get("vhosts", []) if v.get("name") == vhost]
    }
    for kind in PER_VHOST:
        items = [item for item in everything.get(kind, []) if item.get("vhost") == vhost]
        mine[kind] = sorted(items, key=repr)
    return mine


def assert_left_as_it_was(client: ManagementClient, vhost: str, before: dict[str, Any]) -> None:
    """The vhost's definitions are `before`'s, and no load of it is recorded."""
    assert vhost_definitions(client, vhost) == before
    assert not DemoLoad.objects.exists()


def test_every_scenario_loads_into_a_new_vhost_and_unloads_without_a_trace(
    management_client: ManagementClient, demo_vhost: str
) -> None:
    before = vhost_definitions(management_client, demo_vhost)
    assert before["vhosts"] == []
    for name in available_scenarios():
        scenario = load_scenario(name)
        result = load(scenario, vhost=demo_vhost, client=management_client)
        assert result.created_vhost and not result.already_loaded
        loaded = vhost_definitions(management_client, demo_vhost)
        assert {e["name"] for e in loaded["exchanges"]} == {e.name for e in scenario.exchanges}
        assert {q["name"] for q in loaded["queues"]} == {q.name for q in scenario.queues}
        assert len(loaded["bindings"]) == len(scenario.bindings)
        assert {p["user"] for p in loaded["permissions"]} == set(dashboard_users())
        assert loaded["vhosts"] == [{"name": demo_vhost}]
        assert repr(name) in management_client.vhost(demo_vhost).description
        unloaded = unload(name, vhost=demo_vhost, client=management_client)
        assert unloaded is not None and unloaded.deleted_vhost
        assert_left_as_it_was(management_client, demo_vhost, before)


def test_the_declared_objects_are_the_files(
    management_client: ManagementClient, demo_vhost: str
) -> None:
    failures = load_scenario("failures")
    load(failures, vhost=demo_vhost, client=management_client)
    orders = management_client.find_exchange(demo_vhost, "orders")
    assert orders is not None
    assert (orders["type"], orders["durable"]) == ("direct", True)
    assert orders["arguments"] == {"alternate-exchange": "orders.unroutable"}
    burst = management_client.find_queue(demo_vhost, "orders.burst")
    assert burst is not None
    assert burst["arguments"] == {
        "x-dead-letter-exchange": "orders.dead-letter",
        "x-max-length": 3,
        "x-overflow": "drop-head",
    }
    assert management_client.find_queue(demo_vhost, "no-such-queue") is None
    unload("failures", vhost=demo_vhost, client=management_client)


def test_loading_twice_is_loading_once_and_puts_back_what_was_removed(
    management_client: ManagementClient, demo_vhost: str
) -> None:
    topics = load_scenario("topics")
    load(topics, vhost=demo_vhost, client=management_client)
    management_client.remove_queue(demo_vhost, "all-food")
    again = load(topics, vhost=demo_vhost, client=management_client)
    assert again.already_loaded and again.created_vhost
    assert management_client.find_queue(demo_vhost, "all-food") is not None
    assert DemoLoad.objects.count() == 1
    unload("topics", vhost=demo_vhost, client=management_client)
    with pytest.raises(BrokerNotFound):
        management_client.vhost(demo_vhost)


def _declare_someone_elses(client: ManagementClient, vhost: str) -> None:
    """What a vhost held before the demo: an exchange, a queue with a message, a binding."""
    client.declare_exchange(vhost, "theirs", exchange_type="topic")
    client.declare_queue(vhost, "theirs", arguments={"x-max-length": 10})
    client.bind(vhost, "theirs", "theirs", routing_key="#")
    connection = open_blocking_connection(vhost=vhost, purpose="test")
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("theirs", "a.b", b"keep me")
    finally:
        connection.close()


def _depth(vhost: str, queue: str) -> int:
    connection = open_blocking_connection(vhost=vhost, purpose="test depth")
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


def test_a_vhost_that_existed_keeps_what_it_had(
    management_client: ManagementClient, scratch_vhost: str
) -> None:
    _declare_someone_elses(management_client, scratch_vhost)
    before = vhost_definitions(management_client, scratch_vhost)
    result = load(load_scenario("belery"), vhost=scratch_vhost, client=management_client)
    assert not result.created_vhost and result.granted_users == ()
    assert management_client.find_queue(scratch_vhost, "tasks") is not None
    unloaded = unload("belery", vhost=scratch_vhost, client=management_client)
    assert unloaded is not None and not unloaded.deleted_vhost
    assert unloaded.queues == ("tasks",) and unloaded.exchanges == ("Belery",)
    assert_left_as_it_was(management_client, scratch_vhost, before)
    assert _depth(scratch_vhost, "theirs") == 1


def test_permissions_granted_on_an_existing_vhost_are_revoked_on_unload(
    management_client: ManagementClient, scratch_vhost: str
) -> None:
    users = dashboard_users()
    for user in users:
        management_client.revoke_permissions(scratch_vhost, user)
    before = vhost_definitions(management_client, scratch_vhost)
    assert before["permissions"] == []
    result = load(load_scenario("topics"), vhost=scratch_vhost, client=management_client)
    assert result.granted_users == tuple(users)
    granted = vhost_definitions(management_client, scratch_vhost)["permissions"]
    assert {p["user"] for p in granted} == set(users)
    unload("topics", vhost=scratch_vhost, client=management_client)
    assert_left_as_it_was(management_client, scratch_vhost, before)


def test_a_name_already_taken_is_refused_before_anything_changes(
    management_client: ManagementClient, scratch_vhost: str
) -> None:
    management_client.declare_queue(scratch_vhost, "tasks")
    before = vhost_definitions(management_client, scratch_vhost)
    with pytest.raises(LoadRefused, match=r"already has a queue 'tasks'.*another vhost"):
        load(load_scenario("belery"), vhost=scratch_vhost, client=management_client)
    assert_left_as_it_was(management_client, scratch_vhost, before)


def test_a_load_the_broker_refuses_halfway_undoes_itself(
    management_client: ManagementClient, demo_vhost: str
) -> None:
    topics = load_scenario("topics")
    # The broker refuses a quorum queue that is not durable; the exchange is declared first.
    refused = QueueSpec(name="refused", durable=False, arguments={"x-queue-type": "quorum"})
    broken = dataclasses.replace(topics, queues=(*topics.queues, refused))
    with pytest.raises(BrokerError):
        load(broken, vhost=demo_vhost, client=management_client)
    with pytest.raises(BrokerNotFound):
        management_client.vhost(demo_vhost)
    assert not DemoLoad.objects.exists()


def test_a_load_that_crashed_halfway_can_still_be_unloaded(
    management_client: ManagementClient, scratch_vhost: str
) -> None:
    before = vhost_definitions(management_client, scratch_vhost)
    load(load_scenario("events"), vhost=scratch_vhost, client=management_client)
    # As a crash would leave it: the record written, marked unfinished, a queue not declared.
    DemoLoad.objects.update(complete=False)
    management_client.remove_queue(scratch_vhost, "audit.UserLoggedIn")
    record = find_load("events", scratch_vhost)
    assert record is not None and not record.complete
    unload("events", vhost=scratch_vhost, client=management_client)
    assert_left_as_it_was(management_client, scratch_vhost, before)


def test_unloading_what_is_not_loaded_says_so(management_client: ManagementClient) -> None:
    assert unload("topics", vhost="flows-test-never-loaded", client=management_client) is None


def test_the_demo_connections_sign_in_to_the_new_vhost(
    management_client: ManagementClient, demo_vhost: str
) -> None:
    load(load_scenario("mailer"), vhost=demo_vhost, client=management_client)
    connection = open_blocking_connection(vhost=demo_vhost, purpose="test")
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            "services", "mailer", b"{}", pika.BasicProperties(delivery_mode=2), mandatory=True
        )
    finally:
        connection.close()
    assert _depth(demo_vhost, "mailer") == 1
    unload("mailer", vhost=demo_vhost, client=management_client)
