"""The JSON shape of `/api/topology` (documented in the README).

Pure functions from the records of `flows.topology.records` to plain JSON-able dicts, so the
API, the graph page and any script read the same field names: a record's fields under their
own names, plus what a reader would otherwise have to work out (is it built in? is it ours?).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from flows.topology.records import DEFAULT_EXCHANGE, Exchange, Queue, Topology

DEFAULT_EXCHANGE_NOTE = (
    'The default exchange ("") routes a message to the queue named by its routing key: '
    "an implicit binding to every queue, shown once here rather than as one edge per queue."
)


def record_json(record: Any) -> dict[str, Any]:
    """A record's fields by name; argument tables (read-only mappings) as plain dicts."""
    shape: dict[str, Any] = {}
    for item in dataclasses.fields(record):
        value = getattr(record, item.name)
        shape[item.name] = dict(value) if isinstance(value, Mapping) else value
    return shape


def exchange_json(exchange: Exchange) -> dict[str, Any]:
    return {
        **record_json(exchange),
        "is_default": exchange.is_default,
        "builtin": exchange.is_builtin,
        "dashboard": exchange.is_dashboard_object,
    }


def queue_json(queue: Queue) -> dict[str, Any]:
    return {**record_json(queue), "dashboard": queue.is_dashboard_object}


def topology_json(topology: Topology) -> dict[str, Any]:
    return {
        "vhost": topology.vhost,
        "exchanges": [exchange_json(item) for item in topology.exchanges],
        "queues": [queue_json(item) for item in topology.queues],
        "bindings": [record_json(item) for item in topology.bindings],
        "consumers": [{**record_json(item), "label": item.label} for item in topology.consumers],
        "policies": [record_json(item) for item in topology.policies],
        "policies_readable": topology.policies_readable,
        "default_exchange": {"name": DEFAULT_EXCHANGE, "note": DEFAULT_EXCHANGE_NOTE},
    }


__all__ = ["DEFAULT_EXCHANGE_NOTE", "record_json", "topology_json"]
