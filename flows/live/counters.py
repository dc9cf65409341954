"""The live page's counters: total, shown, filtered out, sampled out, dropped, and a rate.

They add up: total = shown + filtered out + sampled out + dropped. `total` is every message
the tap saw while this page watched, including those the tap itself had to drop (its bounded
queue overflowed) before any viewer could see them; those count as dropped.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

RATE_WINDOW_S = 3.0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class LiveCounts:
    # Built by `live_counts` alone, from a viewer's counts: no defaults to drift from them.
    total: int
    shown: int
    filtered_out: int
    sampled_out: int
    dropped: int
    rate: float
    drop_reasons: Mapping[str, int]

    @property
    def adds_up(self) -> bool:
        return self.total == self.shown + self.filtered_out + self.sampled_out + self.dropped

    @property
    def rate_text(self) -> str:
        return f"{self.rate:.0f}" if self.rate >= 10 else f"{self.rate:.1f}"


def live_counts(
    viewer: Mapping[str, Any], *, tap_dropped: int = 0, rate: float = 0.0
) -> LiveCounts:
    """Combine a ViewerStream's `counts` with the tap's drops since joining."""
    reasons = dict(viewer.get("drop_reasons") or {})
    if tap_dropped:
        reasons["tap queue overflow"] = reasons.get("tap queue overflow", 0) + tap_dropped
    return LiveCounts(
        total=_int(viewer.get("received")) + tap_dropped,
        shown=_int(viewer.get("sent")),
        filtered_out=_int(viewer.get("filtered_out")),
        sampled_out=_int(viewer.get("sampled_out")),
        dropped=_int(viewer.get("dropped")) + tap_dropped,
        rate=rate,
        drop_reasons=reasons,
    )


class TapDropTracker:
    """Drops the tap reports (a counter per tap run) since this viewer joined.

    The first report is the baseline; a counter that goes down means the tap restarted and
    counts from zero again, so what was counted before is kept.
    """

    def __init__(self) -> None:
        self._baseline: int | None = None
        self._last = 0
        self._carried = 0

    def observe(self, overflow_dropped: Any) -> int:
        value = _int(overflow_dropped)
        if self._baseline is None:
            self._baseline = value
        elif value < self._last:
            self._carried += self._last - self._baseline
            self._baseline = 0
        self._last = value
        return self.since_join

    @property
    def since_join(self) -> int:
        if self._baseline is None:
            return 0
        return self._carried + self._last - self._baseline


class RateMeter:
    """Messages per second over the last few seconds, from a running total."""

    def __init__(
        self, *, window_s: float = RATE_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()

    def observe(self, total: int, now: float | None = None) -> float:
        now = self._clock() if now is None else now
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window_s:
            self._samples.popleft()
        return self.rate

    @property
    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        if t1 - t0 <= 0:
            return 0.0
        return max(0.0, (n1 - n0) / (t1 - t0))
