"""What the topology page's side panels say, as plain data for its templates (which escape it).

- `node_details`: one exchange, queue or consumer: its facts, its arguments, and its edges
  listed by the node at their other end. The edges are the ones `static/flows/graph.js`
  draws (bindings, exchange-to-exchange bindings, alternate exchanges, dead-lettering,
  consumers), so a name in the panel is a node the graph can focus on.
- `route_panel`: a dry-run's `Prediction` as the lines the panel shows beside it, and as
  the hops the graph lights up.

Pure functions of a `Topology` or a `Prediction`: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from flows.routing_rules.dry_run import Hop, Path
from flows.routing_rules.prediction import Prediction
from flows.topology.records import Binding, Consumer, Exchange, Queue, Topology, exchange_label

NodeKind = Literal["exchange", "queue", "consumer", "missing"]
# The kinds a request may name: a "missing" exchange is asked for as an exchange.
REQUESTABLE_KINDS = ("exchange", "queue", "consumer")
# A panel lists this many edges of one kind; a hub with thousands says how many more.
EDGE_LIST_LIMIT = 200
MISS_LIST_LIMIT = 100

# How an edge reads beside the node at its other end.
EDGE_KINDS = {
    "binding": "binding",
    "e2e": "exchange binding",
    "alternate": "alternate exchange",
    "dead-letter": "dead letters",
}


@dataclass(frozen=True)
class Link:
    """One edge of the node, named by the node at its other end (an exchange or a queue)."""

    kind: Literal["exchange", "queue"]  # of the node at the other end
    name: str
    edge: str  # a value of EDGE_KINDS
    label: str = ""  # the binding's key or arguments, as the graph labels the edge

    @property
    def title(self) -> str:
        return exchange_label(self.name) if self.kind == "exchange" else self.name


@dataclass(frozen=True)
class LinkList:
    """A titled list of the node's edges (or a queue's consumers), the first of `total`."""

    title: str
    links: tuple[Link | ConsumerLine, ...]  # at most EDGE_LIST_LIMIT of them
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.links)


@dataclass(frozen=True)
class ConsumerLine:
    """A consumer of a queue, as its panel lists it."""

    consumer_tag: str
    summary: str  # prefetch, ack mode, channel
    label: str = ""  # the client's name for its connection, else the tag

    @classmethod
    def of(cls, consumer: Consumer) -> ConsumerLine:
        parts = [f"prefetch {shown(consumer.prefetch_count)}", ack_mode(consumer)]
        if consumer.channel:  # not known yet, just after the consumer started
            parts.append(consumer.channel)
        return cls(consumer.consumer_tag, " · ".join(parts), consumer.label)


@dataclass(frozen=True)
class NodeDetails:
    kind: NodeKind
    name: str  # a consumer's tag
    channel: str = ""  # a consumer's channel: with its tag, what names it
    facts: tuple[tuple[str, str], ...] = ()
    arguments: str | None = None  # pretty JSON, None when there are none
    link_lists: tuple[LinkList, ...] = ()
    consumers: tuple[ConsumerLine, ...] = ()  # a queue's, at most EDGE_LIST_LIMIT of them
    consumer_count: int = 0
    dead_letters: LinkList | None = None  # a queue's dead-letter exchange
    is_default_exchange: bool = False

    @property
    def title(self) -> str:
        return exchange_label(self.name) if self.kind == "exchange" else self.name

    @property
    def graph_kind(self) -> Literal["exchange", "queue", "consumer"]:
        """The kind the graph's node id is made of: a missing exchange is an exchange there."""
        return "exchange" if self.kind == "missing" else self.kind

    @property
    def consumer_list(self) -> LinkList:
        return LinkList("Consumers", self.consumers, self.consumer_count)


def shown(value: Any) -> str:
    """A fact as the panel writes it: "—" for unknown, booleans as true/false."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ack_mode(consumer: Consumer) -> str:
    return "manual ack" if consumer.ack_required else "auto-ack"


def pretty_arguments(arguments: Mapping[str, Any]) -> str | None:
    if not arguments:
        return None
    return json.dumps(dict(arguments), indent=1, ensure_ascii=False, default=str)


def binding_label(binding: Binding, exchange_type: str | None) -> str:
    """What the graph writes on a binding's edge: its key, or its header arguments."""
    if exchange_type == "headers":
        pairs = sorted(binding.arguments.items())
        text = " ".join(
            f"{key}={value if isinstance(value, str) else json.dumps(value)}"
            for key, value in pairs
        )
        return text or "(all)"
    if exchange_type == "fanout":
        return ""
    return binding.routing_key if binding.routing_key != "" else '""'


def dead_letter_label(queue: Queue) -> str:
    key = queue.dead_letter_routing_key
    return f"dead letters → {key}" if key else "dead letters"


def _set_at(name: str | None, source: str | None) -> str | None:
    """An alternate or dead-letter exchange with where it was set (argument or policy)."""
    return None if name is None else f"{exchange_label(name)} ({source})"


def _facts(rows: Iterable[tuple[str, Any]]) -> tuple[tuple[str, str], ...]:
    return tuple((term, shown(value)) for term, value in rows)


def _exchange_facts(exchange: Exchange) -> tuple[tuple[str, str], ...]:
    return _facts(
        [
            ("type", exchange.type),
            ("durable", exchange.durable),
            ("auto-delete", exchange.auto_delete),
            ("internal", exchange.internal),
            (
                "alternate exchange",
                _set_at(exchange.alternate_exchange, exchange.alternate_exchange_source),
            ),
            ("policy", exchange.policy),
        ]
    )


def _queue_facts(queue: Queue) -> tuple[tuple[str, str], ...]:
    return _facts(
        [
            ("type", queue.type),
            ("ready", queue.messages_ready),
            ("unacked", queue.messages_unacknowledged),
            ("total", queue.messages),
            ("consumers", queue.consumer_count),
            ("durable", queue.durable),
            ("exclusive", queue.exclusive),
            ("auto-delete", queue.auto_delete),
            ("dead-letter exchange", _set_at(queue.dead_letter_exchange, queue.dead_letter_source)),
            ("dead-letter routing key", queue.dead_letter_routing_key),
            ("max length", queue.max_length),
            ("overflow", queue.overflow),
            ("message TTL (ms)", queue.message_ttl),
            ("policy", queue.policy),
        ]
    )


def _consumer_facts(consumer: Consumer) -> tuple[tuple[str, str], ...]:
    return _facts(
        [
            ("queue", consumer.queue),
            ("consumer tag", consumer.consumer_tag),
            ("connection name", consumer.connection_label or None),
            ("channel", consumer.channel),
            ("user", consumer.user),
            ("prefetch", consumer.prefetch_count),
            ("ack mode", ack_mode(consumer)),
            ("exclusive", consumer.exclusive),
            ("active", consumer.active),
        ]
    )


def _link_list(title: str, links: list[Link]) -> LinkList:
    return LinkList(title, tuple(links[:EDGE_LIST_LIMIT]), len(links))


def _binding_link(topology: Topology, binding: Binding, *, end: str) -> Link:
    """`binding` seen from its other `end` ("source" or "destination")."""
    source = topology.exchange(binding.source)
    label = binding_label(binding, source.type if source is not None else None)
    edge = "e2e" if binding.destination_type == "exchange" else "binding"
    if end == "source":
        return Link("exchange", binding.source, EDGE_KINDS[edge], label)
    return Link(binding.destination_type, binding.destination, EDGE_KINDS[edge], label)


def _drawn_bindings(topology: Topology) -> list[Binding]:
    """The bindings the graph draws: those whose source exchange it knows."""
    return [b for b in topology.bindings if topology.exchange(b.source) is not None]


def _links_into_exchange(topology: Topology, name: str) -> list[Link]:
    """Bindings from other exchanges, alternate-exchange and dead-letter edges, in the
    graph's order."""
    links = [
        _binding_link(topology, binding, end="source")
        for binding in _drawn_bindings(topology)
        if binding.destination_type == "exchange" and binding.destination == name
    ]
    links += [
        Link("exchange", exchange.name, EDGE_KINDS["alternate"])
        for exchange in topology.exchanges
        if exchange.alternate_exchange == name
    ]
    links += [
        Link("queue", queue.name, EDGE_KINDS["dead-letter"], dead_letter_label(queue))
        for queue in topology.queues
        if queue.dead_letter_exchange == name
    ]
    return links


def _exchange_details(topology: Topology, exchange: Exchange) -> NodeDetails:
    outgoing = [
        _binding_link(topology, binding, end="destination")
        for binding in topology.bindings_from(exchange.name)
    ]
    if exchange.alternate_exchange is not None:
        outgoing.append(Link("exchange", exchange.alternate_exchange, EDGE_KINDS["alternate"]))
    return NodeDetails(
        kind="exchange",
        name=exchange.name,
        facts=_exchange_facts(exchange),
        arguments=pretty_arguments(exchange.arguments),
        link_lists=(
            _link_list("Bindings from here", outgoing),
            _link_list("Bound from", _links_into_exchange(topology, exchange.name)),
        ),
        is_default_exchange=exchange.is_default,
    )


def _queue_details(topology: Topology, queue: Queue) -> NodeDetails:
    incoming = [
        _binding_link(topology, binding, end="source")
        for binding in _drawn_bindings(topology)
        if binding.destination_type == "queue" and binding.destination == queue.name
    ]
    consumers = topology.consumers_by_queue.get(queue.name, ())
    dead_letters = None
    if queue.dead_letter_exchange is not None:
        link = Link(
            "exchange",
            queue.dead_letter_exchange,
            EDGE_KINDS["dead-letter"],
            dead_letter_label(queue),
        )
        dead_letters = _link_list("Dead-letters to", [link])
    return NodeDetails(
        kind="queue",
        name=queue.name,
        facts=_queue_facts(queue),
        arguments=pretty_arguments(queue.arguments),
        link_lists=(_link_list("Bound from", incoming),),
        consumers=tuple(ConsumerLine.of(c) for c in consumers[:EDGE_LIST_LIMIT]),
        consumer_count=len(consumers),
        dead_letters=dead_letters,
    )


def _consumer_details(consumer: Consumer) -> NodeDetails:
    return NodeDetails(
        kind="consumer",
        name=consumer.consumer_tag,
        channel=consumer.channel,
        facts=_consumer_facts(consumer),
        arguments=pretty_arguments(consumer.arguments),
    )


def node_details(
    topology: Topology, *, kind: str, name: str, channel: str = ""
) -> NodeDetails | None:
    """The panel for one node, or None when the topology has no such node.

    An exchange that does not exist but is named as an alternate or dead-letter exchange is
    a node too (kind "missing"): the graph draws it, since messages sent its way are lost.
    A consumer is named by its tag and its channel (tags are unique per channel only).
    """
    if kind == "exchange":
        exchange = topology.exchange(name)
        if exchange is not None:
            return _exchange_details(topology, exchange)
        named_by = _links_into_exchange(topology, name)
        if not named_by:
            return None
        return NodeDetails(
            kind="missing", name=name, link_lists=(_link_list("Named by", named_by),)
        )
    if kind == "queue":
        queue = topology.queue(name)
        return _queue_details(topology, queue) if queue is not None else None
    if kind == "consumer":
        for consumer in topology.consumers:
            # The graph draws only consumers of queues it knows.
            if (
                consumer.consumer_tag == name
                and consumer.channel == channel
                and topology.queue(consumer.queue) is not None
            ):
                return _consumer_details(consumer)
    return None


# --- a dry-run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteChain:
    """How the message reaches one queue: the first chain of hops, and why its last matched."""

    queue: str
    chain: str
    reason: str


@dataclass(frozen=True)
class RouteMiss:
    edge: str  # "source → destination"
    reason: str


def _hop_text(hop: Hop) -> str:
    if hop.kind == "alternate-exchange":
        return f"alternate exchange → {hop.destination}"
    if hop.kind == "default-exchange":
        return f"default exchange → {hop.destination}"
    key = f"[{hop.routing_key}] " if hop.routing_key != "" else ""
    return f"{key}→ {hop.destination}"


@dataclass(frozen=True)
class RoutePanel:
    """A dry-run as the panel shows it beside the prediction, and as the graph lights it up."""

    chains: tuple[RouteChain, ...]
    misses: tuple[RouteMiss, ...]  # the first MISS_LIST_LIMIT
    more_misses: int
    graph_route: str  # JSON for the graph's showRoute: the start and every hop


def _chain(exchange: str, queue: str, path: Path) -> RouteChain:
    text = " ".join([exchange_label(exchange), *(_hop_text(hop) for hop in path)])
    return RouteChain(queue, text, path[-1].reason if path else "")


def route_panel(prediction: Prediction) -> RoutePanel:
    result = prediction.result
    graph_route = {
        "exchange": prediction.exchange,
        "unroutable": prediction.unroutable,
        "hops": prediction.hops,
    }
    graph_json = json.dumps(graph_route, ensure_ascii=False, default=str)
    if result is None:
        return RoutePanel((), (), 0, graph_json)
    misses = tuple(
        RouteMiss(
            f"{exchange_label(miss.binding.source)} → {miss.binding.destination}", miss.reason
        )
        for miss in result.not_matched[:MISS_LIST_LIMIT]
    )
    return RoutePanel(
        chains=tuple(_chain(result.exchange, queue, result.path(queue)) for queue in result.queues),
        misses=misses,
        more_misses=len(result.not_matched) - len(misses),
        graph_route=graph_json,
    )


__all__ = [
    "EDGE_LIST_LIMIT",
    "MISS_LIST_LIMIT",
    "REQUESTABLE_KINDS",
    "ConsumerLine",
    "Link",
    "LinkList",
    "NodeDetails",
    "RouteChain",
    "RouteMiss",
    "RoutePanel",
    "ack_mode",
    "binding_label",
    "node_details",
    "route_panel",
    "shown",
]
