"""The records of one vhost's topology: exchanges, queues, bindings, consumers, policies.

Plain frozen dataclasses, built by `flows.topology.parsing` from the management API's JSON
and read by the routing rules, the JSON shapes and the pages.
"""

from __future__ import annotations

import copyreg
import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from flows.broker.naming import is_dashboard_object

DEFAULT_EXCHANGE = ""
# The name RabbitMQ accepts for the default exchange where a name cannot be empty
# (allow-lists, filter parameters).
DEFAULT_EXCHANGE_ALIAS = "amq.default"
# How every page names the default exchange (static/flows/graph.js has the same words).
DEFAULT_EXCHANGE_LABEL = "(default exchange)"

EMPTY: Mapping[str, Any] = MappingProxyType({})


def read_only_mapping(items: dict[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(items)


def _pickle_read_only_mapping(mapping: MappingProxyType[Any, Any]) -> tuple[Any, ...]:
    return read_only_mapping, (dict(mapping),)


# The records' argument tables, and a prediction's, are read-only mappings, which pickle
# cannot copy by itself: a publish's answer (its prediction) is kept in the cache the web
# workers share (`flows.publishing.service.IdempotentPublishes`), which pickles it.
copyreg.pickle(MappingProxyType, _pickle_read_only_mapping)

R = TypeVar("R")


def arguments_field() -> Any:
    """An `arguments` table: empty by default, and left out of the record's hash."""
    return field(default_factory=lambda: EMPTY, hash=False)


class Named:
    """A named broker object, which may be one the dashboard itself declared (a tap queue)."""

    name: str

    @property
    def is_dashboard_object(self) -> bool:
        return is_dashboard_object(self.name)


@dataclass(frozen=True)
class Policy:
    """A user policy. Operator policies never set dead-letter or alternate exchanges."""

    name: str
    pattern: str
    apply_to: str
    priority: int
    definition: Mapping[str, Any] = arguments_field()

    def applies_to(
        self, *, kind: Literal["exchange", "queue"], name: str, queue_type: str = ""
    ) -> bool:
        """Whether this policy's pattern and `apply-to` select the named object."""
        if not _apply_to_covers(self.apply_to, kind=kind, queue_type=queue_type):
            return False
        compiled = _compiled_pattern(self.pattern)
        # RabbitMQ runs the pattern unanchored (re:run), so `q` matches `my-queue`.
        return compiled is not None and compiled.search(name) is not None


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


@dataclass(frozen=True)
class Exchange(Named):
    name: str
    type: str
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: Mapping[str, Any] = arguments_field()
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


@dataclass(frozen=True)
class Queue(Named):
    name: str
    type: str = "classic"
    durable: bool = True
    auto_delete: bool = False
    exclusive: bool = False
    arguments: Mapping[str, Any] = arguments_field()
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


@dataclass(frozen=True)
class Binding:
    source: str
    destination: str
    destination_type: Literal["queue", "exchange"]
    routing_key: str = ""
    arguments: Mapping[str, Any] = arguments_field()
    properties_key: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity of a binding as far as a person can tell them apart."""
        return (self.source, self.destination_type, self.destination, self.properties_key)

    @property
    def is_dashboard_object(self) -> bool:
        """A binding to or from one of the dashboard's own objects (a tap's catch-all)."""
        return is_dashboard_object(self.source) or is_dashboard_object(self.destination)


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
    arguments: Mapping[str, Any] = arguments_field()
    # The name its client gave the connection (`connection_name`), "" when it gave none.
    connection_label: str = ""

    @property
    def label(self) -> str:
        """What a person reads: the client's name for its connection, else the tag."""
        return self.connection_label or self.consumer_tag


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
        return _grouped(self.bindings, lambda binding: binding.source)

    @functools.cached_property
    def consumers_by_queue(self) -> Mapping[str, tuple[Consumer, ...]]:
        return _grouped(self.consumers, lambda consumer: consumer.queue)

    @functools.cached_property
    def without_dashboard_objects(self) -> Topology:
        """The topology as it is without the dashboard: no tap queues, exchanges or bindings.

        What every prediction routes over: a tap's catch-all bindings would otherwise "route"
        every message to the tap queue, and hide the unroutable messages a person looks for.
        Computed once per topology read, however many messages are predicted from it.
        """
        return dataclasses.replace(
            self,
            exchanges=tuple(e for e in self.exchanges if not e.is_dashboard_object),
            queues=tuple(q for q in self.queues if not q.is_dashboard_object),
            bindings=tuple(b for b in self.bindings if not b.is_dashboard_object),
            consumers=tuple(c for c in self.consumers if not is_dashboard_object(c.queue)),
        )

    def exchange(self, name: str) -> Exchange | None:
        return self.exchanges_by_name.get(name)

    def queue(self, name: str) -> Queue | None:
        return self.queues_by_name.get(name)

    def bindings_from(self, exchange: str) -> tuple[Binding, ...]:
        return self.bindings_by_source.get(exchange, ())


def _grouped(records: Iterable[R], key: Callable[[R], str]) -> Mapping[str, tuple[R, ...]]:
    grouped: dict[str, list[R]] = {}
    for record in records:
        grouped.setdefault(key(record), []).append(record)
    return {name: tuple(items) for name, items in grouped.items()}


def exchange_label(name: str) -> str:
    """An exchange's name as shown: the one label for the default exchange ("")."""
    return DEFAULT_EXCHANGE_LABEL if name == DEFAULT_EXCHANGE else name


__all__ = [
    "DEFAULT_EXCHANGE",
    "DEFAULT_EXCHANGE_ALIAS",
    "DEFAULT_EXCHANGE_LABEL",
    "EMPTY",
    "Binding",
    "Consumer",
    "Exchange",
    "Policy",
    "Queue",
    "Topology",
    "arguments_field",
    "exchange_label",
]
