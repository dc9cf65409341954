"""The JSON shapes of `/api/topology` and `/api/route` (documented in the README).

Pure functions from the records of `flows.topology` and `flows.routing_rules` to plain
JSON-able dicts, so the API, the graph page and any script read the same field names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flows.routing_rules import Hop, Miss, RouteResult
from flows.topology import DEFAULT_EXCHANGE, Binding, Consumer, Exchange, Policy, Queue, Topology

DEFAULT_EXCHANGE_NOTE = (
    'The default exchange ("") routes a message to the queue named by its routing key: '
    "an implicit binding to every queue, shown once here rather than as one edge per queue."
)


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return dict(mapping)


def exchange_json(exchange: Exchange) -> dict[str, Any]:
    return {
        "name": exchange.name,
        "type": exchange.type,
        "durable": exchange.durable,
        "auto_delete": exchange.auto_delete,
        "internal": exchange.internal,
        "arguments": _plain(exchange.arguments),
        "policy": exchange.policy,
        "alternate_exchange": exchange.alternate_exchange,
        "alternate_exchange_source": exchange.alternate_exchange_source,
        "is_default": exchange.is_default,
        "builtin": exchange.is_builtin,
        "dashboard": exchange.is_dashboard_object,
    }


def queue_json(queue: Queue) -> dict[str, Any]:
    return {
        "name": queue.name,
        "type": queue.type,
        "durable": queue.durable,
        "auto_delete": queue.auto_delete,
        "exclusive": queue.exclusive,
        "arguments": _plain(queue.arguments),
        "policy": queue.policy,
        "state": queue.state,
        "node": queue.node,
        "messages": queue.messages,
        "messages_ready": queue.messages_ready,
        "messages_unacknowledged": queue.messages_unacknowledged,
        "consumer_count": queue.consumer_count,
        "dead_letter_exchange": queue.dead_letter_exchange,
        "dead_letter_routing_key": queue.dead_letter_routing_key,
        "dead_letter_source": queue.dead_letter_source,
        "max_length": queue.max_length,
        "max_length_bytes": queue.max_length_bytes,
        "overflow": queue.overflow,
        "message_ttl": queue.message_ttl,
        "expires": queue.expires,
        "dashboard": queue.is_dashboard_object,
    }


def binding_json(binding: Binding) -> dict[str, Any]:
    return {
        "source": binding.source,
        "destination": binding.destination,
        "destination_type": binding.destination_type,
        "routing_key": binding.routing_key,
        "arguments": _plain(binding.arguments),
        "properties_key": binding.properties_key,
    }


def consumer_json(consumer: Consumer) -> dict[str, Any]:
    return {
        "queue": consumer.queue,
        "consumer_tag": consumer.consumer_tag,
        "channel": consumer.channel,
        "connection": consumer.connection,
        "channel_number": consumer.channel_number,
        "user": consumer.user,
        "peer": consumer.peer,
        "prefetch_count": consumer.prefetch_count,
        "ack_required": consumer.ack_required,
        "exclusive": consumer.exclusive,
        "active": consumer.active,
        "activity_status": consumer.activity_status,
        "arguments": _plain(consumer.arguments),
    }


def policy_json(policy: Policy) -> dict[str, Any]:
    return {
        "name": policy.name,
        "pattern": policy.pattern,
        "apply_to": policy.apply_to,
        "priority": policy.priority,
        "definition": _plain(policy.definition),
    }


def topology_json(topology: Topology) -> dict[str, Any]:
    return {
        "vhost": topology.vhost,
        "exchanges": [exchange_json(item) for item in topology.exchanges],
        "queues": [queue_json(item) for item in topology.queues],
        "bindings": [binding_json(item) for item in topology.bindings],
        "consumers": [consumer_json(item) for item in topology.consumers],
        "policies": [policy_json(item) for item in topology.policies],
        "policies_readable": topology.policies_readable,
        "default_exchange": {"name": DEFAULT_EXCHANGE, "note": DEFAULT_EXCHANGE_NOTE},
    }


# --- the dry-run ------------------------------------------------------------------------------


def hop_json(hop: Hop) -> dict[str, Any]:
    return {
        "kind": hop.kind,
        "source": hop.source,
        "destination": hop.destination,
        "destination_type": hop.destination_type,
        "routing_key": hop.routing_key,
        "arguments": _plain(hop.arguments),
        "reason": hop.reason,
    }


def miss_json(miss: Miss) -> dict[str, Any]:
    return {**binding_json(miss.binding), "reason": miss.reason}


def _quoted(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def route_summary(result: RouteResult) -> str:
    """One plain sentence: where the message goes, or that it goes nowhere."""
    start = _quoted(result.exchange) if result.exchange else "the default exchange"
    if result.queues:
        count = len(result.queues)
        where = f"{count} queue{'s' if count != 1 else ''}: " + ", ".join(
            _quoted(queue) for queue in result.queues
        )
        if result.alternate_exchange is not None:
            return (
                f"No binding of {start} matched; its alternate exchange "
                f"{_quoted(result.alternate_exchange)} catches the message and routes it "
                f"to {where}."
            )
        return f"Routed to {where}."
    if result.alternate_exchanges_tried:
        tried = ", ".join(_quoted(name) for name in result.alternate_exchanges_tried)
        return (
            f"Unroutable: no binding of {start} matched, and the alternate exchange "
            f"{tried} routes it nowhere either. The broker drops the message "
            "(or returns it to a mandatory publisher)."
        )
    exchange = None if result.exchange == DEFAULT_EXCHANGE else result.exchange
    alternate = "" if exchange is None else f" and {start} has no alternate exchange"
    return (
        f"Unroutable: nothing matched{alternate}. The broker drops the message "
        "(or returns it to a mandatory publisher)."
    )


def animation_hops(result: RouteResult) -> list[dict[str, Any]]:
    """Every hop on any delivering path, once, in travel order (the graph animates these)."""
    seen: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for queue in result.queues:
        for path in result.paths[queue]:
            for hop in path:
                key = (hop.kind, hop.source, hop.destination_type, hop.destination)
                if key not in seen:
                    seen[key] = hop_json(hop)
    return list(seen.values())


def route_json(result: RouteResult, *, vhost: str, headers: Mapping[str, Any] | None) -> dict:
    return {
        "vhost": vhost,
        "exchange": result.exchange,
        "routing_key": result.routing_key,
        "routing_keys": list(result.routing_keys),
        "headers": dict(headers or {}),
        "unroutable": result.unroutable,
        "queues": list(result.queues),
        "routes": [
            {
                "queue": queue,
                "paths": [[hop_json(hop) for hop in path] for path in result.paths[queue]],
            }
            for queue in result.queues
        ],
        "hops": animation_hops(result),
        "not_matched": [miss_json(miss) for miss in result.not_matched],
        "visited_exchanges": list(result.visited_exchanges),
        "alternate_exchanges_tried": list(result.alternate_exchanges_tried),
        # The alternate exchange that caught the message (None: not caught by one).
        "caught_by_alternate_exchange": result.alternate_exchange,
        "notes": list(result.notes),
        "uncertain": result.uncertain,
        "summary": route_summary(result),
    }


__all__ = [
    "DEFAULT_EXCHANGE_NOTE",
    "animation_hops",
    "route_json",
    "route_summary",
    "topology_json",
]
