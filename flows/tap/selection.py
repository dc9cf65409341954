"""What a viewer takes from its tap, chosen on the tap's side of the hand-over.

A viewer asks for a filter (`flows.tap.filters`) and at most so many events a second. The
tap (`flows.tap.manager.TapRunner`) applies each distinct `Selection` once per batch, before
anything crosses the channel layer, and sends what it chose to that selection's group,
with how many it filtered out and sampled out: so the ten messages someone watches among
ten thousand a second never queue behind the other 9,990 (on the web process's event loop,
or through Redis when the tap runs in a process of its own), and every viewer's counts
still add up (`flows.tap.viewer.ViewerStream`). Viewers with the same selection share its
group, its sample and its cost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flows.tap.filters import EventFilter, FilterError

# The most events a second a viewer may ask for (`max_rate`); above it, ask for everything.
MAX_RATE_CEILING = 10_000

# The key of the selection that takes every event (no filter, no sampling).
EVERYTHING_KEY = "all"


@dataclass(frozen=True)
class Selection:
    """A filter (as its query parameters, sorted) and a rate cap (None: every event)."""

    filter_params: tuple[tuple[str, str], ...] = ()
    max_rate: int | None = None

    @classmethod
    def of(cls, event_filter: EventFilter, max_rate: int | None) -> Selection:
        return cls(tuple(sorted(event_filter.to_params().items())), max_rate)

    @classmethod
    def from_message(cls, data: Any) -> Selection:
        """From a control message (`as_message`); raises ValueError when it is not one."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError("a selection is an object")
        params = data.get("filter") or {}
        max_rate = data.get("max_rate")
        if not isinstance(params, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in params.items()
        ):
            raise ValueError("a selection's filter maps names to text")
        if max_rate is not None and (
            type(max_rate) is not int or not 1 <= max_rate <= MAX_RATE_CEILING
        ):
            raise ValueError(f"a selection's max_rate is 1 to {MAX_RATE_CEILING}, or null")
        try:
            event_filter = EventFilter.from_params(params)
        except FilterError as exc:
            raise ValueError(str(exc)) from exc
        return cls.of(event_filter, max_rate)

    def as_message(self) -> dict[str, Any]:
        return {"filter": dict(self.filter_params), "max_rate": self.max_rate}

    def event_filter(self) -> EventFilter:
        return EventFilter.from_params(dict(self.filter_params))

    @property
    def key(self) -> str:
        """Short, ASCII, the same in every process: part of a channel-layer group name."""
        if not self.filter_params and self.max_rate is None:
            return EVERYTHING_KEY
        text = repr((self.filter_params, self.max_rate)).encode("utf-8")
        return hashlib.sha256(text).hexdigest()[:16]


EVERYTHING = Selection()


@dataclass(frozen=True)
class Prefilter:
    """What all of a tap's selections together ask of a delivery's route, when that is all
    they ask: the tap rules out a message none of them wants before making an event of it.

    Making an event (properties, headers, the body's preview, masking) is most of what the
    tap spends on a message beyond pika's own work; for the ten messages watched among ten
    thousand, the other 9,990 cost only a look at their exchange and routing key. A message
    ruled out still has its sequence number and is counted (filtered out, for every
    viewer), so the counts add up as before. None (no prefilter) whenever a selection takes
    everything or asks more than the route (a queue, a header, the body): every message is
    made into an event then, as any viewer or recording may want it.
    """

    filters: tuple[EventFilter, ...]

    @classmethod
    def of(cls, selections: Iterable[Selection]) -> Prefilter | None:
        filters = []
        for selection in selections:
            event_filter = selection.event_filter()
            if event_filter.is_empty or not event_filter.route_only:
                return None
            filters.append(event_filter)
        return cls(tuple(filters)) if filters else None

    def wants(self, kind: str, exchange: str, routing_keys: Sequence[str]) -> bool:
        # An event without routing keys has the routing key "" (which `#` matches).
        keys = routing_keys or ("",)
        return any(f.matches_route(kind, exchange, keys) for f in self.filters)

    def as_message(self) -> list[dict[str, str]]:
        """For a consumer process (`flows.tap.consumer_process`): JSON."""
        return [event_filter.to_params() for event_filter in self.filters]

    @classmethod
    def from_message(cls, data: list[dict[str, str]] | None) -> Prefilter | None:
        if not data:
            return None
        return cls(tuple(EventFilter.from_params(params) for params in data))


__all__ = ["EVERYTHING", "EVERYTHING_KEY", "MAX_RATE_CEILING", "Prefilter", "Selection"]
