"""Discovery: what a vhost holds (exchanges, queues, bindings, consumers, policies).

Read-only selectors over the shared management-API client. Every field is parsed
tolerantly: shapes differ between RabbitMQ versions, so a missing or odd field reads as a
default instead of failing the whole page. The parse functions take the raw JSON items, so
they can be tested on tables of API answers without a broker.

Effective dead-letter and alternate exchanges come from the object's arguments or, when
the argument is absent, from the one policy that applies to it (highest priority wins;
policies do not merge). That is how RabbitMQ resolves them: the argument wins.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from flows.broker.errors import BrokerAuthFailed, BrokerNotFound, BrokerRefused
from flows.broker.management_api import (
    MAX_PAGE_SIZE,
    ManagementClient,
    api_path,
)
from flows.broker.naming import is_dashboard_object

DEFAULT_EXCHANGE = ""

# Only the fields the dashboard shows: the management API then skips the rest of its
# per-object statistics, which is most of the cost on a large vhost.
EXCHANGE_COLUMNS = "name,type,durable,auto_delete,internal,arguments,policy"
QUEUE_COLUMNS = (
    "name,type,durable,auto_delete,exclusive,arguments,policy,effective_policy_definition,"
    "state,node,messages,messages_ready,messages_unacknowledged,consumers"
)
BINDING_COLUMNS = "source,destination,destination_type,routing_key,arguments,properties_key"

EMPTY: Mapping[str, Any] = MappingProxyType({})


class UnknownVhost(BrokerNotFound):
    """The vhost does not exist (or the management user cannot see it)."""


# --- the records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """A user policy. Operator policies never set dead-letter or alternate exchanges."""

    name: str
    pattern: str
    apply_to: str
    priority: int
    definition: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)

    def applies_to(
        self, *, kind: Literal["exchange", "queue"], name: str, queue_type: str = ""
    ) -> bool:
        """Whether this policy's pattern and `apply-to` select the named object."""
        if not _apply_to_covers(self.apply_to, kind=kind, queue_type=queue_type):
            return False
        compiled = _compiled_pattern(self.pattern)
        # RabbitMQ runs the pattern unanchored (re:run), so `q` matches `my-queue`.
        return compiled is not None and compiled.search(name) is not None


@dataclass(frozen=True)
class Exchange:
    name: str
    type: str
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    policy: str | None = None
    # Effective alternate exchange, and where it comes from ("argument" or "policy").
    alternate_exchange: str | None = None
    alternate_exchange_source: str | None = None

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_EXCHANGE

    @property
    def is_builtin(self) -> bool:
        """The broker's own `amq.*` exchanges (and the default exchange)."""
        return self.is_default or self.name.startswith("amq.")

    @property
    def is_dashboard_object(self) -> bool:
        return is_dashboard_object(self.name)


@dataclass(frozen=True)
class Queue:
    name: str
    type: str = "classic"
    durable: bool = True
    auto_delete: bool = False
    exclusive: bool = False
    arguments: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    policy: str | None = None
    state: str = ""
    node: str = ""
    messages: int | None = None
    messages_ready: int | None = None
    messages_unacknowledged: int | None = None
    consumer_count: int | None = None
    # Effective settings: argument first, then the applied policy.
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    dead_letter_source: str | None = None
    max_length: int | None = None
    max_length_bytes: int | None = None
    overflow: str | None = None
    message_ttl: int | None = None
    expires: int | None = None

    @property
    def is_dashboard_object(self) -> bool:
        return is_dashboard_object(self.name)


@dataclass(frozen=True)
class Binding:
    source: str
    destination: str
    destination_type: Literal["queue", "exchange"]
    routing_key: str = ""
    arguments: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    properties_key: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity of a binding as far as a person can tell them apart."""
        return (self.source, self.destination_type, self.destination, self.properties_key)


@dataclass(frozen=True)
class Consumer:
    queue: str
    consumer_tag: str
    channel: str = ""
    connection: str = ""
    channel_number: int | None = None
    user: str = ""
    peer: str = ""
    prefetch_count: int | None = None
    ack_required: bool = True
    exclusive: bool = False
    active: bool = True
    activity_status: str = ""
    arguments: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)


@dataclass(frozen=True)
class Topology:
    """One vhost's routing topology at one moment.

    `bindings` excludes the default exchange's implicit binding to every queue: the
    default exchange routes to the queue named by the routing key, which a reader (and
    `flows.routing_rules`) knows without one edge per queue.
    """

    vhost: str
    exchanges: tuple[Exchange, ...] = ()
    queues: tuple[Queue, ...] = ()
    bindings: tuple[Binding, ...] = ()
    consumers: tuple[Consumer, ...] = ()
    policies: tuple[Policy, ...] = ()
    # False when the management user may not list policies (it needs the policymaker
    # tag): effective settings then come from arguments and what the broker reports.
    policies_readable: bool = True

    @functools.cached_property
    def exchanges_by_name(self) -> Mapping[str, Exchange]:
        return {exchange.name: exchange for exchange in self.exchanges}

    @functools.cached_property
    def queues_by_name(self) -> Mapping[str, Queue]:
        return {queue.name: queue for queue in self.queues}

    @functools.cached_property
    def bindings_by_source(self) -> Mapping[str, tuple[Binding, ...]]:
        grouped: dict[str, list[Binding]] = {}
        for binding in self.bindings:
            grouped.setdefault(binding.source, []).append(binding)
        return {source: tuple(items) for source, items in grouped.items()}

    @functools.cached_property
    def consumers_by_queue(self) -> Mapping[str, tuple[Consumer, ...]]:
        grouped: dict[str, list[Consumer]] = {}
        for consumer in self.consumers:
            grouped.setdefault(consumer.queue, []).append(consumer)
        return {queue: tuple(items) for queue, items in grouped.items()}

    def exchange(self, name: str) -> Exchange | None:
        return self.exchanges_by_name.get(name)

    def queue(self, name: str) -> Queue | None:
        return self.queues_by_name.get(name)

    def bindings_from(self, exchange: str) -> tuple[Binding, ...]:
        return self.bindings_by_source.get(exchange, ())


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


@functools.lru_cache(maxsize=512)
def _compiled_pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _apply_to_covers(apply_to: str, *, kind: str, queue_type: str) -> bool:
    if apply_to == "all":
        return True
    if kind == "exchange":
        return apply_to == "exchanges"
    if apply_to == "queues":
        return True
    # RabbitMQ 3.12+ can target one queue type.
    by_type = {"classic_queues": "classic", "quorum_queues": "quorum", "streams": "stream"}
    return by_type.get(apply_to) == (queue_type or "classic")


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


def parse_consumer(item: Mapping[str, Any]) -> Consumer:
    queue = item.get("queue")
    queue_name = _text(queue.get("name")) if isinstance(queue, Mapping) else _text(queue)
    # A closing channel shows as `[]` instead of an object on some versions.
    channel = item.get("channel_details")
    channel = channel if isinstance(channel, Mapping) else {}
    peer_host, peer_port = _text(channel.get("peer_host")), _int_or_none(channel.get("peer_port"))
    return Consumer(
        queue=queue_name,
        consumer_tag=_text(item.get("consumer_tag")),
        channel=_text(channel.get("name")),
        connection=_text(channel.get("connection_name")),
        channel_number=_int_or_none(channel.get("number")),
        user=_text(channel.get("user")),
        peer=f"{peer_host}:{peer_port}" if peer_host and peer_port is not None else peer_host,
        prefetch_count=_int_or_none(item.get("prefetch_count")),
        ack_required=_bool(item.get("ack_required"), True),
        exclusive=_bool(item.get("exclusive"), False),
        active=_bool(item.get("active"), True),
        activity_status=_text(item.get("activity_status")),
        arguments=_mapping(item.get("arguments")),
    )


def build_topology(
    vhost: str,
    *,
    exchanges: Iterable[Mapping[str, Any]],
    queues: Iterable[Mapping[str, Any]],
    bindings: Iterable[Mapping[str, Any]],
    consumers: Iterable[Mapping[str, Any]] = (),
    policies: Iterable[Mapping[str, Any]] | None = (),
) -> Topology:
    """A Topology from the raw API lists (`policies=None`: they could not be read)."""
    parsed_policies = parse_policies(policies) if policies is not None else None
    return Topology(
        vhost=vhost,
        exchanges=tuple(
            sorted(
                (
                    parse_exchange(item, parsed_policies)
                    for item in exchanges
                    if isinstance(item, Mapping)
                ),
                key=lambda exchange: exchange.name,
            )
        ),
        queues=tuple(
            sorted(
                (
                    parse_queue(item, parsed_policies)
                    for item in queues
                    if isinstance(item, Mapping)
                ),
                key=lambda queue: queue.name,
            )
        ),
        bindings=parse_bindings(bindings),
        consumers=tuple(parse_consumer(item) for item in consumers if isinstance(item, Mapping)),
        policies=parsed_policies or (),
        policies_readable=parsed_policies is not None,
    )


# --- the selector -------------------------------------------------------------------------------


def get_all_pages(
    client: ManagementClient, path: str, *, params: Mapping[str, Any], pool: ThreadPoolExecutor
) -> list[dict]:
    """Every item of a paged list, the pages after the first fetched in parallel.

    The broker builds the whole list for each page it serves, so asking for ten pages one
    after the other costs ten times the wait; in parallel, about one. Endpoints that do
    not page answer the first request with the whole list.
    """
    first = client.get(path, params={**params, "page": 1, "page_size": MAX_PAGE_SIZE})
    if isinstance(first, list):
        return [item for item in first if isinstance(item, dict)]
    if not isinstance(first, dict):
        return []
    pages = [first]
    page_count = _int_or_none(first.get("page_count")) or 1
    pages += pool.map(
        lambda page: client.get(path, params={**params, "page": page, "page_size": MAX_PAGE_SIZE}),
        range(2, page_count + 1),
    )
    items: dict[str, dict] = {}
    for page in pages:
        listed = page.get("items", []) if isinstance(page, dict) else []
        # A name that moved between two pages while they were read is kept once.
        items.update((str(item.get("name")), item) for item in listed if isinstance(item, dict))
    return list(items.values())


@functools.cache
def get_topology_client() -> ManagementClient:
    """The client for reading whole vhosts: like the shared one, with a longer read timeout.

    Listing a vhost of thousands of queues and bindings takes the broker seconds (more on
    a busy machine), past the short timeout that makes an unreachable broker show
    quickly. The connect timeout stays short (2 s), so a broker that is down is still
    reported at once.
    """
    from django.conf import settings

    return ManagementClient(
        settings.RABBITMQ_API_URL,
        settings.RABBITMQ_API_USER,
        settings.RABBITMQ_API_PASSWORD,
        timeout=max(settings.RABBITMQ_API_TIMEOUT, settings.RABBITMQ_API_LIST_TIMEOUT),
    )


def load_topology(vhost: str, *, client: ManagementClient | None = None) -> Topology:
    """Read the vhost's topology from the management API (five lists, fetched in parallel).

    Raises UnknownVhost when the vhost does not exist, and the client's BrokerError
    subclasses for an unreachable or refusing broker.
    """
    client = client or get_topology_client()

    pages = ThreadPoolExecutor(max_workers=4, thread_name_prefix="topology-pages")

    def exchanges() -> list[dict]:
        return get_all_pages(
            client,
            api_path("exchanges", vhost),
            params={"columns": EXCHANGE_COLUMNS, "disable_stats": "true"},
            pool=pages,
        )

    def queues() -> list[dict]:
        # Statistics stay on: the depth and consumer counts are what a person looks for.
        return get_all_pages(
            client, api_path("queues", vhost), params={"columns": QUEUE_COLUMNS}, pool=pages
        )

    def bindings() -> list[dict]:
        # Not paged by the API; the columns keep a large answer small.
        return client.get_all(api_path("bindings", vhost), params={"columns": BINDING_COLUMNS})

    def consumers() -> list[dict]:
        return client.get_all(api_path("consumers", vhost))

    def policies() -> list[dict] | None:
        try:
            return client.get_all(api_path("policies", vhost))
        except (BrokerAuthFailed, BrokerRefused):
            return None  # listing policies needs the policymaker tag

    with ThreadPoolExecutor(max_workers=5, thread_name_prefix="topology") as pool:
        futures = {
            name: pool.submit(fetch)
            for name, fetch in (
                ("exchanges", exchanges),
                ("queues", queues),
                ("bindings", bindings),
                ("consumers", consumers),
                ("policies", policies),
            )
        }
        try:
            results = {name: future.result() for name, future in futures.items()}
        except BrokerNotFound as exc:
            raise UnknownVhost(f"No vhost named {vhost!r} on the broker") from exc
        finally:
            pages.shutdown(wait=False, cancel_futures=True)
    return build_topology(vhost, **results)


__all__ = [
    "DEFAULT_EXCHANGE",
    "Binding",
    "Consumer",
    "Exchange",
    "Policy",
    "Queue",
    "Topology",
    "UnknownVhost",
    "build_topology",
    "get_topology_client",
    "load_topology",
    "matching_policy",
    "parse_binding",
    "parse_bindings",
    "parse_consumer",
    "parse_exchange",
    "parse_policy",
    "parse_queue",
]
