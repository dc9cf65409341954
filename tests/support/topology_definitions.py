"""Declare a topology on the real broker in one call (the management API's definitions import)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flows.broker.management_api import ManagementClient
from tests.support.broker_admin import import_definitions
from tests.support.vhosts import HOSTILE, SCRIPT


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


def declare_hostile_names(client: ManagementClient, vhost: str, exchange_name: str) -> None:
    """A fanout exchange named `exchange_name` bound to the queues `SCRIPT` and `HOSTILE`:
    names a page must escape, and a link must encode."""
    declare(
        client,
        vhost,
        exchanges=[exchange(exchange_name, "fanout")],
        queues=[queue(SCRIPT), queue(HOSTILE)],
        bindings=[binding(exchange_name, SCRIPT), binding(exchange_name, HOSTILE)],
    )


# The shop most topology tests read: orders (topic, AE unrouted) → orders.eu (dead-letters to
# dlx, which is not declared here), → audit (headers) → audited; lonely (direct, AE dead-end,
# which routes nowhere); an internal exchange.
SHOP_EXCHANGES = [
    exchange("orders", "topic", **{"alternate-exchange": "unrouted"}),
    exchange("unrouted", "fanout"),
    exchange("audit", "headers"),
    exchange("lonely", "direct", **{"alternate-exchange": "dead-end"}),
    exchange("dead-end", "fanout"),
    exchange("hidden", "fanout", internal=True),
]
SHOP_QUEUES = [
    queue("orders.eu", {"x-dead-letter-exchange": "dlx", "x-max-length": 10}),
    queue("audited"),
    queue("leftovers"),
]
SHOP_BINDINGS = [
    binding("orders", "orders.eu", "order.eu.*"),
    binding("orders", "audit", "order.#", to="exchange"),
    binding("audit", "audited", arguments={"x-match": "any", "region": "eu"}),
    binding("unrouted", "leftovers"),
]

# Dry-run requests of the shop that the broker would refuse, or that are malformed: (query
# parameters, status, the field to blame, words of the message). `/api/route` and the topology
# page's `/topology/route` refuse each alike.
BAD_ROUTE_REQUESTS = [
    ({"exchange": "nope"}, 404, "exchange", 'No exchange named "nope"'),
    ({}, 400, "exchange", "The 'exchange' parameter is required"),
    ({"exchange": "orders", "headers": "{region: eu"}, 400, "headers", "not valid JSON"),
    ({"exchange": "orders", "headers": "[1, 2]"}, 400, "headers", "must be a JSON object"),
    ({"exchange": "hidden"}, 400, "exchange", "is internal"),
    ({"exchange": "orders", "headers": '{"CC": "k"}'}, 400, "headers", "CC header"),
]
