"""The query string of a tap websocket: `?vhost=<name>&mode=<mode>&<filters>`.

Read the same way by `/ws/tap/` and `/ws/live/` (and the live page builds its socket's URL
with the same names, `flows.views.live.live_ws_path`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from flows.tap.filters import EventFilter, FilterError
from flows.tap.modes import DEFAULT_TAP_MODE, TAP_MODES, TapMode
from flows.tap.selection import MAX_RATE_CEILING, Selection

DEFAULT_VHOST = "/"
# `/ws/live/?audience=<token>`: an audience link's token instead of a session (`flows.audience`).
AUDIENCE_PARAM = "audience"


def query_params(scope: Mapping[str, Any]) -> dict[str, str]:
    """The last value of each query parameter (a form sends each name once)."""
    raw = scope.get("query_string", b"").decode("utf-8", errors="replace")
    return dict(parse_qsl(raw, keep_blank_values=True))


def parse_tap_mode(raw: str | None) -> TapMode:
    """`mode=`: the tap mode a viewer asks for; unset or empty means `auto`."""
    if not raw:
        return DEFAULT_TAP_MODE
    for mode in TAP_MODES:
        if raw == mode:
            return mode
    raise FilterError("mode", "must be " + ", ".join(TAP_MODES[:-1]) + " or " + TAP_MODES[-1])


@dataclass(frozen=True)
class ViewerQuery:
    """What a viewer asked to watch, and how much of it per second at most (None: all)."""

    vhost: str
    mode: TapMode
    event_filter: EventFilter
    max_rate: int | None

    @property
    def selection(self) -> Selection:
        """What the tap chooses for this viewer before handing batches over."""
        return Selection.of(self.event_filter, self.max_rate)

    @classmethod
    def from_params(cls, params: Mapping[str, str], *, max_rate: int | None) -> ViewerQuery:
        """Raises `FilterError` naming the first parameter that cannot be used."""
        return cls(
            vhost=params.get("vhost") or DEFAULT_VHOST,
            mode=parse_tap_mode(params.get("mode")),
            event_filter=EventFilter.from_params(params),
            max_rate=max_rate,
        )


def parse_max_rate(raw: str | None, default: int | None = None) -> int | None:
    """`max_rate=N`: events per second sent to the viewer, the rest sampled out; unset or
    empty means `default` (None: every event)."""
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_RATE_CEILING:
        raise FilterError("max_rate", f"must be a whole number from 1 to {MAX_RATE_CEILING}")
    return int(raw)
