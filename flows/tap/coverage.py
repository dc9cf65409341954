"""Which bindings a bindings-mode tap needs, and what it can and cannot see (pure).

A tap queue sees a message only if one of its bindings matches it, so each exchange gets
the catch-all binding its type allows: topic `#`, fanout any key, headers with no
arguments (`x-match` defaults to `all`, and all of nothing matches everything). Direct
exchanges have no wildcard: only the keys something is already bound with can be tapped.
The default exchange refuses bindings, so direct-to-queue publishing is not covered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flows.broker.naming import is_dashboard_object
from flows.routing_rules.matching import routing_type

TRACE_EXCHANGE = "amq.rabbitmq.trace"
DEFAULT_EXCHANGE_NOT_COVERED = (
    "The default exchange (publishing straight to a queue) cannot be bound to: "
    "only the firehose shows those messages."
)
UNROUTABLE_WARNING = (
    "The tap's catch-all bindings make otherwise-unroutable messages routable on {exchanges}: "
    "alternate exchanges and mandatory returns do not fire there while the tap runs."
)


@dataclass(frozen=True)
class TapBinding:
    """One binding of the tap queue: exchange, routing key, and headers arguments."""

    exchange: str
    routing_key: str = ""
    arguments: tuple[tuple[str, Any], ...] = ()

    @property
    def arguments_dict(self) -> dict[str, Any]:
        return dict(self.arguments)


@dataclass
class TapPlan:
    bindings: set[TapBinding] = field(default_factory=set)
    coverage: dict[str, Any] = field(default_factory=dict)


def catch_all_key(exchange_type: str) -> str | None:
    """The routing key that catches everything on this exchange type, if there is one."""
    return {"topic": "#", "fanout": "", "headers": ""}.get(exchange_type)


def _effective_type(exchange: Mapping[str, Any]) -> str:
    arguments = exchange.get("arguments")
    return routing_type(
        str(exchange.get("type") or ""), arguments if isinstance(arguments, Mapping) else {}
    )


def plan_bindings(
    exchanges: Iterable[Mapping[str, Any]],
    bindings: Iterable[Mapping[str, Any]],
) -> TapPlan:
    """The tap's bindings for a vhost's exchanges and bindings (management API shapes)."""
    bound_keys: dict[str, set[str]] = {}
    for binding in bindings:
        destination = str(binding.get("destination") or "")
        if is_dashboard_object(destination):
            continue  # our own (or another dashboard's) tap bindings say nothing new
        source = str(binding.get("source") or "")
        bound_keys.setdefault(source, set()).add(str(binding.get("routing_key") or ""))

    plan = TapPlan()
    covered: list[str] = []
    catch_all_exchanges: list[str] = []
    direct_keys: dict[str, list[str]] = {}
    not_covered: list[str] = []
    reasons: dict[str, str] = {}
    for exchange in sorted(exchanges, key=lambda item: str(item.get("name") or "")):
        name = str(exchange.get("name") or "")
        if name == TRACE_EXCHANGE:
            continue  # the firehose's own exchange: not a user's message flow
        if name == "":
            not_covered.append(name)
            reasons[name] = DEFAULT_EXCHANGE_NOT_COVERED
            continue
        exchange_type = _effective_type(exchange)
        key = catch_all_key(exchange_type)
        if key is not None:
            plan.bindings.add(TapBinding(name, key))
            covered.append(name)
            catch_all_exchanges.append(name)
        elif exchange_type == "direct":
            keys = sorted(bound_keys.get(name, set()))
            plan.bindings.update(TapBinding(name, k) for k in keys)
            covered.append(name)
            direct_keys[name] = keys
        else:
            not_covered.append(name)
            reasons[name] = (
                f"Exchange type {exchange_type or 'unknown'!r} has no catch-all binding the "
                "tap knows of: only the firehose shows its messages."
            )
    warnings = [reasons[name] for name in not_covered]
    if catch_all_exchanges:
        shown = ", ".join(repr(name) for name in catch_all_exchanges[:10])
        if len(catch_all_exchanges) > 10:
            shown += f" and {len(catch_all_exchanges) - 10} more"
        warnings.append(UNROUTABLE_WARNING.format(exchanges=shown))
    plan.coverage = {
        "exchanges": covered,
        "direct_keys": direct_keys,
        "not_covered": not_covered,
        "not_covered_reasons": reasons,
        "warnings": warnings,
    }
    return plan


FIREHOSE_WARNING = (
    "Tracing (the firehose) is on for this vhost: every publish and delivery is copied to "
    "amq.rabbitmq.trace, which costs the broker throughput."
)


def firehose_coverage(
    exchange_names: Iterable[str], *, tracing_was_on: bool, cluster_nodes: int = 1
) -> dict[str, Any]:
    """Coverage of a firehose tap: every exchange, the default one included.

    In a cluster, RabbitMQ (3.10 at least) keeps tracing per node, and the management API
    switches it on only on the node that serves the request: messages published or delivered
    through connections to the other nodes are traced only where tracing is on there too.
    """
    warnings = [FIREHOSE_WARNING]
    if not tracing_was_on:
        warnings.append("The tap switched tracing on and switches it off again when it stops.")
    if cluster_nodes > 1:
        warnings.append(
            f"This broker is a cluster of {cluster_nodes} nodes, and tracing is switched on "
            "per node: the dashboard switches it on only on the node serving its management "
            "API, so messages through connections to the other nodes may be missing."
        )
    return {
        "exchanges": sorted(name for name in exchange_names if name != TRACE_EXCHANGE),
        "direct_keys": {},
        "not_covered": [],
        "not_covered_reasons": {},
        "warnings": warnings,
    }
