"""Declare a topology on the real broker in one call (the management API's definitions import)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flows.broker.management_api import ManagementClient
from tests.support.broker_admin import import_definitions


def exchange(name: str, type_: str = "direct", *, internal: bool = False, **arguments: Any):
    return {
        "name": name,
        "type": type_,
        "durable": True,
        "auto_delete": False,
        "internal": internal,
        "arguments": arguments,
    }


def queue(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "durable": True, "auto_delete": False, "arguments": arguments or {}}


def binding(
    source: str,
    destination: str,
    routing_key: str = "",
    *,
    to: str = "queue",
    arguments: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "source": source,
        "destination": destination,
        "destination_type": to,
        "routing_key": routing_key,
        "arguments": arguments or {},
    }


def declare(
    client: ManagementClient,
    vhost: str,
    *,
    exchanges: Sequence[dict[str, Any]] = (),
    queues: Sequence[dict[str, Any]] = (),
    bindings: Sequence[dict[str, Any]] = (),
) -> None:
    """Create the objects in `vhost` (which must exist): one POST, whatever the size."""
    import_definitions(
        client,
        vhost,
        {"exchanges": list(exchanges), "queues": list(queues), "bindings": list(bindings)},
    )
