"""What tests (and benchmarks) do to a broker that the dashboard itself never does.

A vhost with its users' permissions, definitions imported in one request, policies, reading
messages back, closing connections: each through the dashboard's own `ManagementClient`
transport, so errors come back as the same typed `BrokerError`s. Vhosts, permissions,
exchanges, queues and bindings one at a time: tests call the client's own methods (loading
a demo scenario uses them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flows.broker.management_api import ManagementClient, api_path


def create_vhost_for(
    client: ManagementClient, name: str, users: Iterable[str], *, description: str = ""
) -> str:
    """A new vhost on which each of `users` may do everything."""
    client.declare_vhost(name, description=description)
    for user in set(users):
        client.grant_permissions(name, user)
    return name


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


def create_user(client: ManagementClient, name: str, password: str, *, tags: str = "") -> None:
    """A broker user (`tags`: comma-separated, `monitoring`, `administrator`...)."""
    client.put(api_path("users", name), json={"password": password, "tags": tags})


def delete_user(client: ManagementClient, name: str) -> None:
    client.delete(api_path("users", name))
