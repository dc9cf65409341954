"""The publishing tests' small topology in a scratch vhost, and what they do to it and its users."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pika

from flows.broker.amqp import open_blocking_connection
from flows.broker.management_api import ManagementClient
from flows.publishing.publisher import publisher_connection_name
from tests.support.broker_admin import close_connection
from tests.support.waiting import eventually


@dataclass(frozen=True)
class DemoTopology:
    """`demo.topic` (topic): `a.*` -> q.a, `#` -> q.all; `demo.direct` (direct): `full` -> q.full,
    a queue with `x-max-length` 0 and `reject-publish`, so the broker nacks what reaches it."""

    vhost: str
    client: ManagementClient

    def fields(self, **extra: Any) -> dict[str, Any]:
        """A message to `demo.topic` with key `a.b` (routed to q.a and q.all), plus `extra`."""
        return {
            "vhost": self.vhost,
            "exchange": "demo.topic",
            "routing_key": "a.b",
            "body": "hi",
            **extra,
        }

    def depth(self, queue: str) -> int:
        """Messages ready in a queue this test created (a passive declare: nothing consumed)."""
        connection = open_blocking_connection(vhost=self.vhost, purpose="test depth")
        try:
            return connection.channel().queue_declare(queue, passive=True).method.message_count
        finally:
            connection.close()

    def wait_for_depth(self, queue: str, expected: int) -> int:
        """Wait until `queue` holds `expected` messages; that depth."""
        eventually(
            lambda: self.depth(queue) == expected,
            what=f"{expected} messages in {queue!r}",
        )
        return expected


def declare_demo_topology(client: ManagementClient, vhost: str) -> None:
    client.declare_exchange(vhost, "demo.topic", exchange_type="topic")
    client.declare_exchange(vhost, "demo.direct", exchange_type="direct")
    for queue in ("q.a", "q.all"):
        client.declare_queue(vhost, queue, durable=False)
    for queue, key in (("q.a", "a.*"), ("q.all", "#")):
        client.bind(vhost, "demo.topic", queue, routing_key=key)
    # A queue that refuses every message: the broker nacks publishes routed to it.
    client.declare_queue(
        vhost,
        "q.full",
        durable=False,
        arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
    )
    client.bind(vhost, "demo.direct", "q.full", routing_key="full")


def close_publisher_connection(client: ManagementClient, vhost: str) -> None:
    """Close the vhost's publisher connection from the broker side, as an operator would,
    and wait until the broker no longer lists it (the close has been sent)."""
    wanted = publisher_connection_name(vhost)

    def publisher_connections() -> list[str]:
        return [
            connection["name"]
            for connection in client.connections(vhost)
            if (connection.get("client_properties") or {}).get("connection_name") == wanted
        ]

    # The management API lists a new connection after a moment.
    name = eventually(publisher_connections, what=f"a connection named {wanted!r}")[0]
    close_connection(client, name)
    eventually(lambda: name not in publisher_connections(), what=f"{wanted!r} closed by the broker")


def bare_connection(vhost: str) -> pika.BlockingConnection:
    return open_blocking_connection(vhost=vhost, purpose="test")


def grant_publish(user) -> None:
    """Give `user` the publisher role: publish, and run demo scenarios."""
    from flows import access

    access.set_role(user, access.PUBLISHER)
