"""Where a tapped publish went, when the broker does not say (bindings mode).

In bindings mode the tap sees a copy of the message but not the queues it reached: the
routing dry-run (`flows.routing_rules.route`) over the vhost's topology predicts them, and
the page labels the answer "predicted". The dashboard's own tap objects are left out of the
topology first: the tap's catch-all bindings would otherwise "route" every message to the
tap queue, and hide exactly the unroutable messages a person is looking for.

The topology comes from a per-process cache refreshed in a worker thread, at most every few
seconds, so a burst of events never turns into a burst of management-API calls, and the
event loop never waits on HTTP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flows.broker.errors import BrokerError
from flows.broker.naming import is_dashboard_object
from flows.routing_rules import RoutingError, route
from flows.topology import Topology, load_topology

LOGGER = logging.getLogger(__name__)

TOPOLOGY_MAX_AGE_S = 5.0

HopDict = Mapping[str, str]


@dataclass(frozen=True)
class Prediction:
    queues: tuple[str, ...] = ()
    unroutable: bool = False
    # Every hop on the way to the predicted queues, once each, for the graph.
    hops: tuple[HopDict, ...] = ()
    # For each queue, the first chain of hops that reached it.
    paths: Mapping[str, tuple[HopDict, ...]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    error: str = ""


def without_dashboard_objects(topology: Topology) -> Topology:
    """The topology as it is without the dashboard: no tap queues, exchanges or bindings."""
    return dataclasses.replace(
        topology,
        exchanges=tuple(e for e in topology.exchanges if not is_dashboard_object(e.name)),
        queues=tuple(q for q in topology.queues if not is_dashboard_object(q.name)),
        bindings=tuple(
            b
            for b in topology.bindings
            if not is_dashboard_object(b.destination) and not is_dashboard_object(b.source)
        ),
        consumers=tuple(c for c in topology.consumers if not is_dashboard_object(c.queue)),
    )


def _hop_dict(hop: Any) -> dict[str, str]:
    return {
        "source": hop.source,
        "destination": hop.destination,
        "destination_type": hop.destination_type,
        "routing_key": hop.routing_key,
    }


def predict(topology: Topology | None, event: Mapping[str, Any]) -> Prediction:
    """The dry-run's answer for a publish event (topology already without dashboard objects)."""
    if topology is None:
        return Prediction(error="topology not loaded yet: route unknown")
    headers = event.get("headers") if isinstance(event.get("headers"), Mapping) else {}
    try:
        result = route(
            topology,
            exchange=str(event.get("exchange") or ""),
            routing_key=str(event.get("routing_key") or ""),
            headers=headers,
        )
    except RoutingError as exc:
        return Prediction(error=exc.message)
    hops: list[dict[str, str]] = []
    seen: set[tuple[str, str, str]] = set()
    paths: dict[str, tuple[HopDict, ...]] = {}
    for queue in result.queues:
        chain = tuple(_hop_dict(hop) for hop in result.path(queue))
        paths[queue] = chain
        for hop in chain:
            key = (hop["source"], hop["destination"], hop["destination_type"])
            if key not in seen:
                seen.add(key)
                hops.append(hop)
    return Prediction(
        queues=result.queues,
        unroutable=result.unroutable and not result.uncertain,
        hops=tuple(hops),
        paths=paths,
        notes=result.notes,
        error=""
        if not result.uncertain or result.queues
        else "route unknown: " + "; ".join(result.notes),
    )


class TopologyCache:
    """The latest topology per vhost, refreshed in the background when older than max_age."""

    def __init__(self, *, max_age_s: float = TOPOLOGY_MAX_AGE_S) -> None:
        self.max_age_s = max_age_s
        self._entries: dict[str, tuple[float, Topology]] = {}
        self._loading: dict[str, asyncio.Task[None]] = {}

    def peek(self, vhost: str) -> Topology | None:
        entry = self._entries.get(vhost)
        return entry[1] if entry else None

    async def get(self, vhost: str, *, wait: bool = False) -> Topology | None:
        """The cached topology (possibly a few seconds old); starts a refresh when stale.

        With `wait`, the first load is awaited, so the first events of a page are predicted.
        """
        entry = self._entries.get(vhost)
        stale = entry is None or time.monotonic() - entry[0] > self.max_age_s
        loading = self._loading.get(vhost)
        if loading is not None and loading.get_loop() is not asyncio.get_running_loop():
            # Left behind by another event loop (tests run several): it will never finish here.
            del self._loading[vhost]
        if stale and vhost not in self._loading:
            self._loading[vhost] = asyncio.ensure_future(self._refresh(vhost))
        if entry is None and wait and vhost in self._loading:
            await asyncio.shield(self._loading[vhost])
            entry = self._entries.get(vhost)
        return entry[1] if entry else None

    def invalidate(self, vhost: str) -> None:
        self._entries.pop(vhost, None)

    def refresh_soon(self, vhost: str, *, min_age_s: float = 1.0) -> None:
        """Refresh ahead of max_age (a consumer or queue the cache does not know yet)."""
        entry = self._entries.get(vhost)
        if entry is not None and time.monotonic() - entry[0] >= min_age_s:
            self._entries[vhost] = (entry[0] - self.max_age_s, entry[1])

    async def _refresh(self, vhost: str) -> None:
        try:
            topology = await asyncio.to_thread(load_topology, vhost)
        except BrokerError as exc:
            LOGGER.info("live: no topology for vhost %r: %s", vhost, exc)
        else:
            self._entries[vhost] = (time.monotonic(), without_dashboard_objects(topology))
        finally:
            self._loading.pop(vhost, None)


topology_cache = TopologyCache()
