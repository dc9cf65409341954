"""What the firehose saw happen to one message, for a synchronous view to ask.

The publish page publishes a message with a `message_id` and wants to show the queues the
broker really routed it to. When a firehose tap for the vhost runs in this process, it
records each publish event that carries a `message_id` here (a bounded, short memory), and
`wait_for_routed_queues` waits for it. Without such a tap it answers None at once: the
caller falls back to what it knows otherwise (publisher confirms, the routing dry-run).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from flows.tap.events import TapEvent

# How many recent message ids, and for how long, per process: enough for a person
# publishing from a form, small enough to cost nothing.
MAX_REMEMBERED = 2_000
REMEMBER_FOR_S = 60.0

_lock = threading.Lock()
_changed = threading.Condition(_lock)
_firehose_taps: dict[str, int] = {}  # vhost -> running firehose taps in this process
_seen: OrderedDict[tuple[str, str], tuple[float, list[str]]] = OrderedDict()


def firehose_started(vhost: str) -> None:
    with _lock:
        _firehose_taps[vhost] = _firehose_taps.get(vhost, 0) + 1


def firehose_stopped(vhost: str) -> None:
    with _lock:
        remaining = _firehose_taps.get(vhost, 0) - 1
        if remaining > 0:
            _firehose_taps[vhost] = remaining
        else:
            _firehose_taps.pop(vhost, None)
        _changed.notify_all()


def firehose_running(vhost: str) -> bool:
    with _lock:
        return vhost in _firehose_taps


def record(event: TapEvent) -> None:
    """Called by the firehose tap for each publish event (cheap when there is no id)."""
    message_id = event["properties"].get("message_id")
    routed = event.get("routed_queues")
    if not isinstance(message_id, str) or routed is None or event.get("kind") != "publish":
        return
    now = time.monotonic()
    with _lock:
        _seen[(event["vhost"], message_id)] = (now, list(routed))
        _seen.move_to_end((event["vhost"], message_id))
        while len(_seen) > MAX_REMEMBERED:
            _seen.popitem(last=False)
        _changed.notify_all()


def wait_for_routed_queues(
    vhost: str, message_id: str, timeout_s: float, *, seen_after: float | None = None
) -> list[str] | None:
    """The queues the broker routed message `message_id` to ([] = unroutable), or None.

    None: no firehose tap runs for the vhost in this process, or it did not see the
    message within `timeout_s`. `seen_after` (a `time.monotonic()` reading taken before
    publishing) ignores an earlier message that carried the same id. Blocking: call it
    from a synchronous view, not the loop.
    """
    deadline = time.monotonic() + timeout_s
    with _lock:
        while True:
            if vhost not in _firehose_taps:
                return None
            seen = _seen.get((vhost, message_id))
            if (
                seen is not None
                and (seen_after is None or seen[0] >= seen_after)
                and time.monotonic() - seen[0] <= REMEMBER_FOR_S
            ):
                return list(seen[1])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            _changed.wait(remaining)
