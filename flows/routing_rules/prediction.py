"""The one prediction type: the dry-run's answer for one message, as every page shows it.

The publish page and API (where will this message go?), the live page (where did this
tapped message go, when the broker does not say?) and `/api/route` (the topology page's
dry-run) all call `predict` and read the same `Prediction`, so they cannot disagree.

`predict` is also the one place the dashboard's own objects are left out of the topology
(see `Topology.without_dashboard_objects`): while a bindings tap runs, its catch-all
bindings exist on the broker, and must not show up as every message's route.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flows.routing_rules.dry_run import Hop, RouteResult, RoutingError, route
from flows.topology.records import DEFAULT_EXCHANGE, EMPTY, Topology
from flows.topology.shapes import record_json


@dataclass(frozen=True)
class Prediction:
    """Where one message goes, or why that cannot be said."""

    vhost: str
    exchange: str
    routing_key: str
    headers: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    result: RouteResult | None = None
    # Why there is no result: the topology could not be read, or the broker would refuse
    # the publish itself (then `refusal` holds the dry-run's error, for an API status).
    unavailable: str | None = None
    refusal: RoutingError | None = None

    @property
    def queues(self) -> tuple[str, ...]:
        return self.result.queues if self.result is not None else ()

    @property
    def unroutable(self) -> bool:
        return self.result is not None and self.result.unroutable

    @property
    def uncertain(self) -> bool:
        """An exchange type the dry-run does not simulate was on the way."""
        return self.result is not None and self.result.uncertain

    @property
    def notes(self) -> tuple[str, ...]:
        return self.result.notes if self.result is not None else ()

    @property
    def alternate_exchange(self) -> str | None:
        """The alternate exchange that caught the message (None: not caught by one)."""
        return self.result.alternate_exchange if self.result is not None else None

    @property
    def why_unknown(self) -> str | None:
        """Why no route can be drawn (no answer, or nothing but an unsimulated exchange)."""
        if self.result is None:
            return self.unavailable
        if self.result.uncertain and not self.result.queues:
            return "route unknown: " + "; ".join(self.result.notes)
        return None

    @functools.cached_property
    def hops(self) -> list[dict[str, Any]]:
        """Every hop on any delivering path, once, in travel order (the graph animates these)."""
        if self.result is None:
            return []
        seen: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for queue in self.result.queues:
            for path in self.result.paths[queue]:
                for hop in path:
                    key = (hop.kind, hop.source, hop.destination_type, hop.destination)
                    seen.setdefault(key, record_json(hop))
        return list(seen.values())

    @functools.cached_property
    def paths(self) -> dict[str, list[dict[str, Any]]]:
        """For each queue reached, the first (shortest) chain of hops that reached it."""
        if self.result is None:
            return {}
        return {queue: _path_json(self.result.path(queue)) for queue in self.result.queues}

    def to_json(self) -> dict[str, Any]:
        """The `/api/route` answer, and the `predicted` part of a publish's answer."""
        shape: dict[str, Any] = {
            "vhost": self.vhost,
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "headers": dict(self.headers),
            "unroutable": self.unroutable,
            "queues": list(self.queues),
            "alternate_exchange": self.alternate_exchange,
            "notes": list(self.notes),
            "uncertain": self.uncertain,
            "unavailable": self.unavailable,
        }
        result = self.result
        if result is None:
            return shape
        return {
            **shape,
            "routing_keys": list(result.routing_keys),
            "routes": [
                {"queue": queue, "paths": [_path_json(path) for path in result.paths[queue]]}
                for queue in result.queues
            ],
            "hops": self.hops,
            "not_matched": [
                {**record_json(miss.binding), "reason": miss.reason} for miss in result.not_matched
            ],
            "visited_exchanges": list(result.visited_exchanges),
            "alternate_exchanges_tried": list(result.alternate_exchanges_tried),
            "caught_by_alternate_exchange": result.alternate_exchange,
            "summary": route_summary(result),
        }


def _path_json(path: tuple[Hop, ...]) -> list[dict[str, Any]]:
    return [record_json(hop) for hop in path]


def predict(
    topology: Topology,
    *,
    exchange: str,
    routing_key: str,
    headers: Mapping[str, Any] | None = None,
) -> Prediction:
    """The dry-run's answer for a message published to `exchange` in this topology.

    The dashboard's own objects are left out first, so a running tap never "catches" it.
    """
    asked = Prediction(
        vhost=topology.vhost,
        exchange=exchange,
        routing_key=routing_key,
        headers=headers or EMPTY,
    )
    try:
        result = route(
            topology.without_dashboard_objects,
            exchange=exchange,
            routing_key=routing_key,
            headers=headers,
        )
    except RoutingError as exc:
        return dataclasses.replace(asked, unavailable=exc.message, refusal=exc)
    return dataclasses.replace(asked, result=result)


def no_prediction(
    reason: str,
    *,
    vhost: str,
    exchange: str,
    routing_key: str,
    headers: Mapping[str, Any] | None = None,
) -> Prediction:
    """A prediction that could not be made (no topology to route over), saying why."""
    return Prediction(
        vhost=vhost,
        exchange=exchange,
        routing_key=routing_key,
        headers=headers or EMPTY,
        unavailable=reason,
    )


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


__all__ = ["Prediction", "no_prediction", "predict", "route_summary"]
