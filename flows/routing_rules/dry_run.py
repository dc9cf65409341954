"""The dry-run behind "where would this go?": RabbitMQ's routing as a pure function.

No I/O: `route()` takes a `Topology` (see `flows.topology.records`) and a message's exchange,
routing key and headers, and says which queues the broker would put it in, by which chain
of bindings, which bindings did not match and why, and whether an alternate exchange
caught it. The rules follow RabbitMQ 3.x (`rabbit_exchange:route/2` and the exchange type
modules), checked against a real broker by the test suite. Matching one binding is in
`flows.routing_rules.matching`; here is how a message travels:

- exchange-to-exchange bindings forward the message with its routing keys; each exchange
  is visited at most once, so cycles end;
- an exchange's alternate exchange is used when that exchange's own bindings matched
  nothing at all (a matched exchange-to-exchange binding counts, even if the exchange
  downstream routes nowhere); alternate exchanges chain, and loops end;
- the default exchange `""` routes to the queue named by the routing key, if it exists;
- `CC` and `BCC` headers (lists of strings) add routing keys; `BCC` is removed before
  headers exchanges look at the headers.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from flows.routing_rules.matching import (
    SIMULATED_TYPES,
    explain_binding_match,
    routing_type,
    show,
)
from flows.topology.records import DEFAULT_EXCHANGE, Binding, Topology

# The direct reply-to pseudo-queue is not a queue: the default exchange never "routes" to it.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


class RoutingError(Exception):
    """The dry-run cannot answer: the message could not even be published."""

    def __init__(self, message: str, *, field: str = "exchange") -> None:
        super().__init__(message)
        self.message = message
        # Which input of the publish is at fault ("exchange" or "headers"), for forms and APIs.
        self.field = field


class UnknownExchange(RoutingError):
    """No exchange of that name in the vhost (publishing would close the channel: 404)."""


class PublishRefused(RoutingError):
    """The broker would refuse the publish itself (internal exchange, malformed CC/BCC)."""


# --- routing ------------------------------------------------------------------------------------

HopKind = Literal["binding", "alternate-exchange", "default-exchange"]


@dataclass(frozen=True, kw_only=True)
class Hop(Binding):
    """One step of a message's way: a binding it matched, or the edge an alternate exchange
    or the default exchange adds (`routing_key` is then the key the default exchange used)."""

    kind: HopKind
    reason: str = ""

    @classmethod
    def through(cls, binding: Binding, *, reason: str) -> Hop:
        fields = {item.name: getattr(binding, item.name) for item in dataclasses.fields(Binding)}
        return cls(**fields, kind="binding", reason=reason)


Path = tuple[Hop, ...]


@dataclass(frozen=True)
class Miss:
    """A binding of a visited exchange that did not match, and why."""

    binding: Binding
    reason: str


@dataclass(frozen=True)
class RouteResult:
    exchange: str
    routing_key: str
    # The routing key followed by the CC and BCC routing keys.
    routing_keys: tuple[str, ...]
    queues: tuple[str, ...]
    # For each queue, every chain of hops that delivered it (the queue gets one copy).
    paths: Mapping[str, tuple[Path, ...]]
    not_matched: tuple[Miss, ...]
    visited_exchanges: tuple[str, ...]
    alternate_exchanges_tried: tuple[str, ...]
    # The first alternate exchange on the way to a queue: "caught by".
    alternate_exchange: str | None
    notes: tuple[str, ...] = ()
    # True when an exchange type the dry-run does not simulate was on the way.
    uncertain: bool = False

    @property
    def unroutable(self) -> bool:
        return not self.queues

    def path(self, queue: str) -> Path:
        """The first (shortest) chain that delivered `queue`."""
        return self.paths[queue][0]


def routing_keys_of(routing_key: str, headers: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The routing key and the sender-selected CC/BCC keys (RabbitMQ extension)."""
    keys = [routing_key]
    for name in ("CC", "BCC"):
        value = (headers or {}).get(name)
        if value is None:
            continue
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise PublishRefused(
                f"the {name} header must be a list of routing keys; "
                f"the broker would close the channel (PRECONDITION_FAILED)",
                field="headers",
            )
        keys.extend(item for item in value if isinstance(item, str))
    return tuple(dict.fromkeys(keys))


def _first_alternate_exchange(chain: Path) -> str | None:
    return next((hop.destination for hop in chain if hop.kind == "alternate-exchange"), None)


def _is_cycle(destination: str, arrival: Path, source: str) -> bool:
    return destination == source or any(hop.source == destination for hop in arrival)


def route(
    topology: Topology,
    *,
    exchange: str,
    routing_key: str,
    headers: Mapping[str, Any] | None = None,
) -> RouteResult:
    """Where the broker would route a message published to `exchange`.

    Raises UnknownExchange for an exchange the topology does not hold, PublishRefused
    for a publish the broker would refuse outright.
    """
    start = topology.exchange(exchange)
    if start is None and exchange != DEFAULT_EXCHANGE:
        raise UnknownExchange(f"No exchange named {show(exchange)} in vhost {show(topology.vhost)}")
    if start is not None and start.internal:
        raise PublishRefused(
            f"Exchange {show(exchange)} is internal: the broker refuses publishes to it "
            "(only exchange-to-exchange bindings can feed it)"
        )
    routing_keys = routing_keys_of(routing_key, headers)
    # The broker strips BCC before any exchange sees the headers.
    visible_headers = {key: value for key, value in (headers or {}).items() if key != "BCC"}

    arrival: dict[str, Path] = {exchange: ()}
    worklist: deque[str] = deque([exchange])
    visited: list[str] = []
    queue_paths: dict[str, list[Path]] = {}
    misses: list[Miss] = []
    tried: list[str] = []
    notes: list[str] = []
    uncertain = False

    while worklist:
        name = worklist.popleft()
        visited.append(name)
        here = arrival[name]

        if name == DEFAULT_EXCHANGE:
            for key in routing_keys:
                if key == DIRECT_REPLY_TO:
                    notes.append(f"{DIRECT_REPLY_TO} is direct reply-to, not a queue")
                elif topology.queue(key) is not None:
                    hop = Hop(
                        kind="default-exchange",
                        source=DEFAULT_EXCHANGE,
                        destination=key,
                        destination_type="queue",
                        routing_key=key,
                        reason="the default exchange routes to the queue named by the routing key",
                    )
                    queue_paths.setdefault(key, []).append((*here, hop))
                else:
                    notes.append(
                        f"no queue named {show(key)}: the default exchange routes only to "
                        "the queue named by the routing key"
                    )
            continue

        current = topology.exchange(name)
        assert current is not None  # only existing exchanges enter the worklist
        kind = routing_type(current.type, current.arguments)
        if kind not in SIMULATED_TYPES:
            uncertain = True
            notes.append(
                f"exchange {show(name)} is of type {current.type}, which the dry-run does not "
                "simulate: where it routes is unknown"
            )
        if current.type == "x-delayed-message" and kind in SIMULATED_TYPES:
            notes.append(f"exchange {show(name)} delays messages by their x-delay header")

        matched: list[tuple[Binding, str]] = []
        for binding in topology.bindings_from(name):
            ok, reason = explain_binding_match(
                kind, binding, routing_keys=routing_keys, headers=visible_headers
            )
            if ok:
                matched.append((binding, reason))
            else:
                misses.append(Miss(binding=binding, reason=reason))

        if not matched and kind in SIMULATED_TYPES and current.alternate_exchange is not None:
            alternate = current.alternate_exchange
            if topology.exchange(alternate) is None and alternate != DEFAULT_EXCHANGE:
                notes.append(f"alternate exchange {show(alternate)} of {show(name)} does not exist")
            elif alternate in arrival:
                notes.append(
                    f"alternate exchange {show(alternate)} of {show(name)} was already "
                    "visited: the loop ends there"
                )
            else:
                tried.append(alternate)
                arrival[alternate] = (
                    *here,
                    Hop(
                        kind="alternate-exchange",
                        source=name,
                        destination=alternate,
                        destination_type="exchange",
                        reason=f"no binding of {show(name)} matched",
                    ),
                )
                worklist.append(alternate)

        for binding, reason in matched:
            hop = Hop.through(binding, reason=reason)
            if binding.destination_type == "queue":
                queue_paths.setdefault(binding.destination, []).append((*here, hop))
            elif binding.destination in arrival:
                if _is_cycle(binding.destination, here, name):
                    notes.append(
                        f"binding {show(name)} → {show(binding.destination)} closes a cycle: "
                        "each exchange routes a message once"
                    )
            elif topology.exchange(binding.destination) is not None:
                arrival[binding.destination] = (*here, hop)
                worklist.append(binding.destination)

    queues = tuple(sorted(queue_paths))
    paths = {queue: tuple(sorted(queue_paths[queue], key=len)) for queue in queues}
    caught = {
        first
        for chains in paths.values()
        for chain in chains
        if (first := _first_alternate_exchange(chain)) is not None
    }
    return RouteResult(
        exchange=exchange,
        routing_key=routing_key,
        routing_keys=routing_keys,
        queues=queues,
        paths=MappingProxyType(paths),
        not_matched=tuple(misses),
        visited_exchanges=tuple(visited),
        alternate_exchanges_tried=tuple(tried),
        alternate_exchange=next((name for name in tried if name in caught), None),
        notes=tuple(dict.fromkeys(notes)),
        uncertain=uncertain,
    )


__all__ = [
    "DIRECT_REPLY_TO",
    "Hop",
    "Miss",
    "Path",
    "PublishRefused",
    "RouteResult",
    "RoutingError",
    "UnknownExchange",
    "route",
    "routing_keys_of",
]
