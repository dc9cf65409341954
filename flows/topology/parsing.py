"""Parsing the management API's JSON into the records of `flows.topology.records`.

Every field is parsed tolerantly: shapes differ between RabbitMQ versions, so a missing or
odd field reads as a default instead of failing the whole page. The functions take the raw
JSON items, so they can be tested on tables of API answers without a broker.

Effective dead-letter and alternate exchanges come from the object's arguments or, when
the argument is absent, from the one policy that applies to it (highest priority wins;
policies do not merge). That is how RabbitMQ resolves them: the argument wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal

from flows.topology.records import (
    DEFAULT_EXCHANGE,
    EMPTY,
    Binding,
    Consumer,
    Exchange,
    Policy,
    Queue,
    Topology,
)

# --- tolerant field readers ---------------------------------------------------------------------


def _text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _bool(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    """A read-only copy of a JSON object; anything else (older brokers send `[]`) is empty."""
    if isinstance(value, Mapping) and value:
        return MappingProxyType({str(key): item for key, item in value.items()})
    return EMPTY


def _min_present(*values: int | None) -> int | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


# --- parsing the API's JSON ---------------------------------------------------------------------


def parse_policy(item: Mapping[str, Any]) -> Policy:
    return Policy(
        name=_text(item.get("name")),
        pattern=_text(item.get("pattern")),
        apply_to=_text(item.get("apply-to") or item.get("apply_to"), "all"),
        priority=_int_or_none(item.get("priority")) or 0,
        definition=_mapping(item.get("definition")),
    )


def parse_policies(items: Iterable[Mapping[str, Any]]) -> tuple[Policy, ...]:
    return tuple(parse_policy(item) for item in items if isinstance(item, Mapping))


def matching_policy(
    policies: Iterable[Policy],
    *,
    kind: Literal["exchange", "queue"],
    name: str,
    queue_type: str = "",
) -> Policy | None:
    """The policy RabbitMQ applies: the highest priority among those that match.

    Ties are broken by name so the answer is at least stable (RabbitMQ leaves them
    unspecified). The broker applies policies to `amq.*` exchanges too.
    """
    candidates = [
        policy
        for policy in policies
        if policy.applies_to(kind=kind, name=name, queue_type=queue_type)
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda policy: (-policy.priority, policy.name))


def _applied_policy(
    item: Mapping[str, Any],
    policies: tuple[Policy, ...] | None,
    *,
    kind: Literal["exchange", "queue"],
    name: str,
    queue_type: str = "",
) -> Policy | None:
    """Which policy applies to the object.

    With the policy list at hand, match it ourselves: the broker's own `policy` field on
    queues comes from statistics and lags a policy change by up to 5 s. Without it (the
    user may not list policies), take the broker's word and its merged definition.
    """
    if policies is not None:
        return matching_policy(policies, kind=kind, name=name, queue_type=queue_type)
    reported = item.get("policy")
    if isinstance(reported, str) and reported:
        return Policy(
            name=reported,
            pattern="",
            apply_to="",
            priority=0,
            definition=_mapping(item.get("effective_policy_definition")),
        )
    return None


def parse_exchange(item: Mapping[str, Any], policies: tuple[Policy, ...] | None = ()) -> Exchange:
    """One exchange; `policies=None` means the policy list could not be read."""
    name = _text(item.get("name"))
    arguments = _mapping(item.get("arguments"))
    policy = _applied_policy(item, policies, kind="exchange", name=name)
    alternate, source = _text_or_none(arguments.get("alternate-exchange")), "argument"
    if alternate is None and policy is not None:
        alternate, source = _text_or_none(policy.definition.get("alternate-exchange")), "policy"
    return Exchange(
        name=name,
        type=_text(item.get("type"), "direct"),
        durable=_bool(item.get("durable"), True),
        auto_delete=_bool(item.get("auto_delete"), False),
        internal=_bool(item.get("internal"), False),
        arguments=arguments,
        policy=policy.name if policy is not None else None,
        alternate_exchange=alternate,
        alternate_exchange_source=source if alternate is not None else None,
    )


def parse_queue(item: Mapping[str, Any], policies: tuple[Policy, ...] | None = ()) -> Queue:
    """One queue; `policies=None` means the policy list could not be read."""
    name = _text(item.get("name"))
    arguments = _mapping(item.get("arguments"))
    queue_type = _text(item.get("type")) or _text(arguments.get("x-queue-type"), "classic")
    policy = _applied_policy(item, policies, kind="queue", name=name, queue_type=queue_type)
    definition = policy.definition if policy is not None else EMPTY

    dlx: str | None = None
    dlx_source: str | None = None
    if "x-dead-letter-exchange" in arguments and isinstance(
        arguments["x-dead-letter-exchange"], str
    ):
        # "" is a real setting: dead-letter through the default exchange.
        dlx, dlx_source = arguments["x-dead-letter-exchange"], "argument"
    elif isinstance(definition.get("dead-letter-exchange"), str):
        dlx, dlx_source = definition["dead-letter-exchange"], "policy"
    dlrk = _text_or_none(arguments.get("x-dead-letter-routing-key"))
    if dlrk is None:
        dlrk = _text_or_none(definition.get("dead-letter-routing-key"))

    return Queue(
        name=name,
        type=queue_type,
        durable=_bool(item.get("durable"), True),
        auto_delete=_bool(item.get("auto_delete"), False),
        exclusive=_bool(item.get("exclusive"), False),
        arguments=arguments,
        policy=policy.name if policy is not None else None,
        state=_text(item.get("state")),
        node=_text(item.get("node")),
        messages=_int_or_none(item.get("messages")),
        messages_ready=_int_or_none(item.get("messages_ready")),
        messages_unacknowledged=_int_or_none(item.get("messages_unacknowledged")),
        consumer_count=_int_or_none(item.get("consumers")),
        dead_letter_exchange=dlx,
        dead_letter_routing_key=dlrk,
        dead_letter_source=dlx_source,
        # For limits RabbitMQ applies the stricter of argument and policy.
        max_length=_min_present(
            _int_or_none(arguments.get("x-max-length")), _int_or_none(definition.get("max-length"))
        ),
        max_length_bytes=_min_present(
            _int_or_none(arguments.get("x-max-length-bytes")),
            _int_or_none(definition.get("max-length-bytes")),
        ),
        overflow=_text_or_none(arguments.get("x-overflow"))
        or _text_or_none(definition.get("overflow")),
        message_ttl=_min_present(
            _int_or_none(arguments.get("x-message-ttl")),
            _int_or_none(definition.get("message-ttl")),
        ),
        expires=_min_present(
            _int_or_none(arguments.get("x-expires")), _int_or_none(definition.get("expires"))
        ),
    )


def parse_binding(item: Mapping[str, Any]) -> Binding | None:
    """One binding, or None for a row that is not one (unknown destination type)."""
    destination_type = _text(item.get("destination_type"))
    if destination_type not in ("queue", "exchange"):
        return None
    return Binding(
        source=_text(item.get("source")),
        destination=_text(item.get("destination")),
        destination_type=destination_type,  # type: ignore[arg-type]
        routing_key=_text(item.get("routing_key")),
        arguments=_mapping(item.get("arguments")),
        properties_key=_text(item.get("properties_key")),
    )


def parse_bindings(items: Iterable[Mapping[str, Any]]) -> tuple[Binding, ...]:
    """Explicit bindings: the default exchange's implicit one per queue is left out."""
    bindings = (parse_binding(item) for item in items if isinstance(item, Mapping))
    return tuple(
        binding
        for binding in bindings
        if binding is not None and binding.source != DEFAULT_EXCHANGE
    )


def connection_labels(connections: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Each connection's generated name -> the name its client gave it, for those that did.

    `/api/consumers` names only the generated connection name (`127.0.0.1:46608 ->
    127.0.0.1:5672`); `/api/connections` has the client's `connection_name` as
    `user_provided_name` (and in `client_properties`, where older brokers only have it).
    """
    labels: dict[str, str] = {}
    for item in connections:
        if not isinstance(item, Mapping):
            continue
        properties = _mapping(item.get("client_properties"))
        label = _text(item.get("user_provided_name")) or _text(properties.get("connection_name"))
        name = _text(item.get("name"))
        if name and label:
            labels[name] = label
    return labels


def parse_consumer(
    item: Mapping[str, Any], connection_labels: Mapping[str, str] | None = None
) -> Consumer:
    """One `/api/consumers` entry; `connection_labels` (from `connection_labels()`) names it."""
    queue = item.get("queue")
    queue_name = _text(queue.get("name")) if isinstance(queue, Mapping) else _text(queue)
    # A closing channel shows as `[]` instead of an object on some versions.
    channel = item.get("channel_details")
    channel = channel if isinstance(channel, Mapping) else {}
    peer_host, peer_port = _text(channel.get("peer_host")), _int_or_none(channel.get("peer_port"))
    connection = _text(channel.get("connection_name"))
    return Consumer(
        queue=queue_name,
        consumer_tag=_text(item.get("consumer_tag")),
        channel=_text(channel.get("name")),
        connection=connection,
        channel_number=_int_or_none(channel.get("number")),
        user=_text(channel.get("user")),
        peer=f"{peer_host}:{peer_port}" if peer_host and peer_port is not None else peer_host,
        prefetch_count=_int_or_none(item.get("prefetch_count")),
        ack_required=_bool(item.get("ack_required"), True),
        exclusive=_bool(item.get("exclusive"), False),
        active=_bool(item.get("active"), True),
        activity_status=_text(item.get("activity_status")),
        arguments=_mapping(item.get("arguments")),
        connection_label=(connection_labels or {}).get(connection, "") if connection else "",
    )


def build_topology(
    vhost: str,
    *,
    exchanges: Iterable[Mapping[str, Any]],
    queues: Iterable[Mapping[str, Any]],
    bindings: Iterable[Mapping[str, Any]],
    consumers: Iterable[Mapping[str, Any]] = (),
    policies: Iterable[Mapping[str, Any]] | None = (),
    connections: Iterable[Mapping[str, Any]] = (),
) -> Topology:
    """A Topology from the raw API lists (`policies=None`: they could not be read).

    `connections` only names the consumers (see `connection_labels`)."""
    parsed_policies = parse_policies(policies) if policies is not None else None
    labels = connection_labels(connections)

    def by_name(parse: Any, items: Iterable[Mapping[str, Any]]) -> tuple[Any, ...]:
        parsed = (parse(item, parsed_policies) for item in items if isinstance(item, Mapping))
        return tuple(sorted(parsed, key=lambda record: record.name))

    return Topology(
        vhost=vhost,
        exchanges=by_name(parse_exchange, exchanges),
        queues=by_name(parse_queue, queues),
        bindings=parse_bindings(bindings),
        consumers=tuple(
            parse_consumer(item, labels) for item in consumers if isinstance(item, Mapping)
        ),
        policies=parsed_policies or (),
        policies_readable=parsed_policies is not None,
    )


__all__ = [
    "build_topology",
    "connection_labels",
    "matching_policy",
    "parse_binding",
    "parse_bindings",
    "parse_consumer",
    "parse_exchange",
    "parse_policies",
    "parse_policy",
    "parse_queue",
]
