"""What tests (and benchmarks) do to a broker that the dashboard itself never does.

Creating and deleting vhosts, granting permissions, declaring objects, setting policies,
reading messages back, closing connections: each through the dashboard's own
`ManagementClient` transport, so errors come back as the same typed `BrokerError`s.
Declaring and vhosts go through the client's own methods (loading a demo scenario uses
them too); the rest only tests need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flows.broker.management_api import ManagementClient, api_path


def create_vhost(client: ManagementClient, name: str, *, description: str = "") -> None:
    client.declare_vhost(name, description=description)


def delete_vhost(client: ManagementClient, name: str) -> None:
    client.remove_vhost(name)


def set_permissions(
    client: ManagementClient,
    vhost: str,
    user: str,
    *,
    configure: str = ".*",
    write: str = ".*",
    read: str = ".*",
) -> None:
    client.grant_permissions(vhost, user, configure=configure, write=write, read=read)


def create_vhost_for(
    client: ManagementClient, name: str, users: Iterable[str], *, description: str = ""
) -> str:
    """A new vhost on which each of `users` may do everything."""
    create_vhost(client, name, description=description)
    for user in set(users):
        set_permissions(client, name, user)
    return name


def declare_exchange(
    client: ManagementClient, vhost: str, name: str, type_: str, **settings: Any
) -> None:
    client.declare_exchange(vhost, name, exchange_type=type_, **settings)


def declare_queue(client: ManagementClient, vhost: str, name: str, **settings: Any) -> None:
    client.declare_queue(vhost, name, **settings)


def bind_queue(
    client: ManagementClient,
    vhost: str,
    exchange: str,
    queue: str,
    routing_key: str = "",
    *,
    arguments: Mapping[str, Any] | None = None,
) -> None:
    client.bind(vhost, exchange, queue, routing_key=routing_key, arguments=arguments)


def import_definitions(
    client: ManagementClient, vhost: str, definitions: Mapping[str, Any]
) -> None:
    """Create exchanges, queues and bindings in one POST, whatever their number."""
    client.request("POST", api_path("definitions", vhost), json=dict(definitions))


def set_policy(
    client: ManagementClient,
    vhost: str,
    name: str,
    *,
    pattern: str,
    definition: Mapping[str, Any],
    apply_to: str = "all",
    priority: int = 0,
) -> None:
    client.put(
        api_path("policies", vhost, name),
        json={
            "pattern": pattern,
            "apply-to": apply_to,
            "priority": priority,
            "definition": dict(definition),
        },
    )


def delete_policy(client: ManagementClient, vhost: str, name: str) -> None:
    client.delete(api_path("policies", vhost, name))


def get_messages(
    client: ManagementClient, vhost: str, queue: str, *, count: int = 1
) -> list[dict[str, Any]]:
    """Take up to `count` messages off a queue (not requeued), decoded by the broker."""
    answer = client.request(
        "POST",
        api_path("queues", vhost, queue, "get"),
        json={"count": count, "ackmode": "ack_requeue_false", "encoding": "auto"},
    )
    return answer if isinstance(answer, list) else []


def close_connection(client: ManagementClient, name: str) -> None:
    """Close a client connection from the broker's side, as an operator would."""
    client.delete(api_path("connections", name))
