"""RabbitMQ's routing rules as pure functions: the dry-run behind "where would this go?".

No I/O: `route()` takes a `Topology` (see `flows.topology`) and a message's exchange,
routing key and headers, and says which queues the broker would put it in, by which chain
of bindings, which bindings did not match and why, and whether an alternate exchange
caught it. The rules follow RabbitMQ 3.x (`rabbit_exchange:route/2` and the exchange type
modules), checked against a real broker by the test suite:

- direct: the binding key equals a routing key; fanout: every binding;
- topic: words split on `.`, `*` is exactly one word, `#` zero or more; the empty key is
  zero words; `a..b` has an empty middle word;
- headers: `x-match` all (the default), any, all-with-x, any-with-x; `x-` arguments are
  ignored except in the `-with-x` modes; values compare like Erlang's `==` (1 equals 1.0,
  `true` is not 1, "1" is not 1);
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

import json
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from flows.topology import DEFAULT_EXCHANGE, Binding, Exchange, Topology

EMPTY: Mapping[str, Any] = MappingProxyType({})

X_MATCH_MODES = ("all", "any", "all-with-x", "any-with-x")
SIMULATED_TYPES = ("direct", "fanout", "topic", "headers")
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


# --- matching ---------------------------------------------------------------------------------


def topic_words(key: str) -> list[str]:
    """Split a routing key or binding pattern into words; the empty key has none."""
    return [] if key == "" else key.split(".")


def topic_matches(pattern: str, routing_key: str) -> bool:
    """Whether a topic binding `pattern` matches `routing_key`.

    `*` matches exactly one word (possibly empty), `#` zero or more words. A `*` or `#`
    that is only part of a word is an ordinary character.
    """
    pattern_words = topic_words(pattern)
    end = len(pattern_words)

    def closure(positions: set[int]) -> set[int]:
        # A `#` may match zero words: stepping over it costs nothing.
        stack = list(positions)
        while stack:
            position = stack.pop()
            if position < end and pattern_words[position] == "#" and position + 1 not in positions:
                positions.add(position + 1)
                stack.append(position + 1)
        return positions

    positions = closure({0})
    for word in topic_words(routing_key):
        advanced: set[int] = set()
        for position in positions:
            if position == end:
                continue
            wanted = pattern_words[position]
            if wanted == "#":
                advanced.add(position)
            elif wanted == "*" or wanted == word:
                advanced.add(position + 1)
        if not advanced:
            return False
        positions = closure(advanced)
    return end in positions


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def amqp_values_equal(left: Any, right: Any) -> bool:
    """Equality as the broker compares header values (Erlang's `==` on decoded values).

    Numbers compare by value whatever their width or type (1 == 1.0); booleans are not
    numbers; strings never equal numbers.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) and _is_number(right):
        return not (isinstance(left, float) and math.isnan(left)) and left == right
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    if isinstance(left, Sequence) and isinstance(right, Sequence):
        if isinstance(left, str | bytes) or isinstance(right, str | bytes):
            return left == right
        return len(left) == len(right) and all(
            amqp_values_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(
            amqp_values_equal(left[key], right[key]) for key in left
        )
    return left == right


def x_match_mode(binding_arguments: Mapping[str, Any]) -> str:
    """The binding's `x-match`; anything else (or nothing) means `all`, as in the broker."""
    mode = binding_arguments.get("x-match")
    return mode if mode in X_MATCH_MODES else "all"


def header_pattern(binding_arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments a headers binding compares with the message's headers."""
    with_x = x_match_mode(binding_arguments).endswith("-with-x")
    return {
        key: value
        for key, value in binding_arguments.items()
        if key != "x-match" and (with_x or not key.startswith("x-"))
    }


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def explain_headers_match(
    binding_arguments: Mapping[str, Any], message_headers: Mapping[str, Any] | None
) -> tuple[bool, str]:
    """Whether a headers binding matches, and a sentence saying why (not)."""
    headers = message_headers or {}
    mode = x_match_mode(binding_arguments)
    pattern = header_pattern(binding_arguments)
    wants_all = mode.startswith("all")

    def compare(key: str, wanted: Any) -> str | None:
        """None if the header satisfies the argument, else what is wrong."""
        if key not in headers:
            return f"header {_show(key)} is missing"
        # An argument without a value (AMQP void) asks only for the header's presence.
        if wanted is None or amqp_values_equal(wanted, headers[key]):
            return None
        return f"header {_show(key)} is {_show(headers[key])}, the binding wants {_show(wanted)}"

    if not pattern:
        if wants_all:
            return True, f"x-match {mode} with no header arguments matches every message"
        return False, f"x-match {mode} with no header arguments matches no message"
    problems = {key: compare(key, wanted) for key, wanted in pattern.items()}
    failed = [problem for problem in problems.values() if problem is not None]
    if wants_all:
        if failed:
            return False, f"x-match {mode}: " + "; ".join(failed)
        return True, f"x-match {mode}: every header argument matched"
    matched = [key for key, problem in problems.items() if problem is None]
    if matched:
        return True, f"x-match {mode}: header {_show(matched[0])} matched"
    return False, f"x-match {mode}: no header argument matched (" + "; ".join(failed) + ")"


def headers_match(
    binding_arguments: Mapping[str, Any], message_headers: Mapping[str, Any] | None
) -> bool:
    """Whether a headers-exchange binding with these arguments matches these headers."""
    return explain_headers_match(binding_arguments, message_headers)[0]


def effective_type(exchange: Exchange) -> str:
    """The routing behaviour of an exchange type (the delayed-message plugin delegates)."""
    if exchange.type == "x-delayed-message":
        delegated = exchange.arguments.get("x-delayed-type")
        return delegated if isinstance(delegated, str) else exchange.type
    return exchange.type


def explain_binding_match(
    exchange_type: str,
    binding: Binding,
    *,
    routing_keys: Sequence[str],
    headers: Mapping[str, Any] | None,
) -> tuple[bool, str]:
    """Whether one binding of an exchange of this type matches the message, and why (not)."""
    shown_keys = " or ".join(_show(key) for key in routing_keys)
    if exchange_type == "fanout":
        return True, "fanout: every binding matches"
    if exchange_type == "direct":
        if binding.routing_key in routing_keys:
            return True, f"binding key {_show(binding.routing_key)} equals the routing key"
        return (
            False,
            f"binding key {_show(binding.routing_key)} is not the routing key {shown_keys}",
        )
    if exchange_type == "topic":
        for key in routing_keys:
            if topic_matches(binding.routing_key, key):
                return True, f"pattern {_show(binding.routing_key)} matches {_show(key)}"
        return False, f"pattern {_show(binding.routing_key)} does not match {shown_keys}"
    if exchange_type == "headers":
        return explain_headers_match(binding.arguments, headers)
    return False, f"not evaluated: the dry-run does not simulate {exchange_type} exchanges"


# --- routing ------------------------------------------------------------------------------------

HopKind = Literal["binding", "alternate-exchange", "default-exchange"]


@dataclass(frozen=True)
class Hop:
    """One step of a message's way: a binding, an alternate exchange, or the default route."""

    kind: HopKind
    source: str
    destination: str
    destination_type: Literal["queue", "exchange"]
    # The binding key (bindings), or the routing key the default exchange used.
    routing_key: str = ""
    arguments: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    reason: str = ""


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
        raise UnknownExchange(
            f"No exchange named {_show(exchange)} in vhost {_show(topology.vhost)}"
        )
    if start is not None and start.internal:
        raise PublishRefused(
            f"Exchange {_show(exchange)} is internal: the broker refuses publishes to it "
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
                        f"no queue named {_show(key)}: the default exchange routes only to "
                        "the queue named by the routing key"
                    )
            continue

        current = topology.exchange(name)
        assert current is not None  # only existing exchanges enter the worklist
        kind = effective_type(current)
        if kind not in SIMULATED_TYPES:
            uncertain = True
            notes.append(
                f"exchange {_show(name)} is of type {current.type}, which the dry-run does not "
                "simulate: where it routes is unknown"
            )
        if current.type == "x-delayed-message" and kind in SIMULATED_TYPES:
            notes.append(f"exchange {_show(name)} delays messages by their x-delay header")

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
                notes.append(
                    f"alternate exchange {_show(alternate)} of {_show(name)} does not exist"
                )
            elif alternate in arrival:
                notes.append(
                    f"alternate exchange {_show(alternate)} of {_show(name)} was already "
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
                        reason=f"no binding of {_show(name)} matched",
                    ),
                )
                worklist.append(alternate)

        for binding, reason in matched:
            hop = Hop(
                kind="binding",
                source=name,
                destination=binding.destination,
                destination_type=binding.destination_type,
                routing_key=binding.routing_key,
                arguments=binding.arguments,
                reason=reason,
            )
            if binding.destination_type == "queue":
                queue_paths.setdefault(binding.destination, []).append((*here, hop))
            elif binding.destination in arrival:
                if _is_cycle(binding.destination, here, name):
                    notes.append(
                        f"binding {_show(name)} → {_show(binding.destination)} closes a cycle: "
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
    "Hop",
    "Miss",
    "PublishRefused",
    "RouteResult",
    "RoutingError",
    "UnknownExchange",
    "amqp_values_equal",
    "explain_binding_match",
    "explain_headers_match",
    "headers_match",
    "route",
    "routing_keys_of",
    "topic_matches",
    "topic_words",
]
