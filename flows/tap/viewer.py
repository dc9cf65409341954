"""The viewer side of the tap: what one websocket connection gets to see, and its counts.

Each connection filters the tap's events (so the few messages a person cares about are
never sampled away among thousands), then samples what is left down to what it can send,
and counts every event into exactly one bucket, so that

    received == sent + filtered_out + sampled_out + dropped

holds at every moment, whatever the rate.

A viewer of a tap in another process (`manage.py tap`) also keeps that tap going: it joins
over the control channel, heart-beats, and joins again at once when a tap process starts
(`rejoin_tap`). A tap process that died and was started again is a gap for its viewers: each
stream notices that another process now sends (`ViewerStream.from_tap`) and reports the time
without a tap among the tap's own gaps, as long as a disconnection from the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from flows.runtime import runtime
from flows.tap.events import TapEvent, prettify
from flows.tap.filters import EventFilter
from flows.tap.groups import control_channel, selection_group, viewers_group
from flows.tap.modes import DEFAULT_TAP_MODE, TAP_MODES, TapMode
from flows.tap.selection import EVERYTHING, Selection

LOGGER = logging.getLogger(__name__)

SIGN_IN_TO_WATCH = "Sign in to watch messages."
SLOW_VIEWER = "viewer too slow to read (its socket is backed up)"
MISSED_BATCHES = "missed batches (viewer too slow)"
# What a viewer's stream counts; always received = sent + filtered_out + sampled_out + dropped.
COUNT_NAMES = ("received", "sent", "filtered_out", "sampled_out", "dropped")
# A viewer of a tap in another process says it is still there this often; the tap process
# forgets viewers it has not heard from for VIEWER_EXPIRY_S.
HEARTBEAT_INTERVAL_S = 5.0
VIEWER_EXPIRY_S = 20.0
# A viewer's stream keeps this many gaps of its own (restarts of the tap process).
MAX_VIEWER_GAPS = 20
M = TypeVar("M", bound=Mapping[str, Any])


class TapRefused(Exception):
    """The viewer may not have this tap; `message` says why, for the person watching."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class TapTicket:
    """What `join_tap` hands back, for `leave_tap`."""

    vhost: str
    channel_name: str
    group: str
    mode: TapMode
    firehose_allowed: bool
    layer: Any = field(repr=False)
    started_by: str = ""  # the viewer's user, for the audit log of the tap it may start
    selection: Selection = EVERYTHING  # what the tap sends it (`flows.tap.selection`)
    heartbeat: asyncio.Task | None = field(default=None, repr=False)


def _runs_in_web_process() -> bool:
    from django.conf import settings

    return settings.FLOWS_TAP_RUNS_IN == "web"


async def join_tap(
    consumer,
    vhost: str,
    user,
    mode: TapMode = DEFAULT_TAP_MODE,
    *,
    audience: bool = False,
    selection: Selection = EVERYTHING,
) -> TapTicket:
    """Add the consumer to the group of its selection of the vhost's tap (every event, by
    default) and make sure a tap runs for it.

    Raises `TapRefused` for an anonymous user, an unknown mode, or the firehose asked for
    by someone no administrator allowed to switch tracing on (unless it is on already).
    `audience`: the holder of an audience link (`flows.audience`), checked by the caller,
    watches with no account (`user` is ignored) and never switches tracing on.
    """
    from channels.db import database_sync_to_async

    from flows.tap.firehose import user_may_choose_firehose
    from flows.tap.manager import tracing_is_on

    if not audience and (user is None or not getattr(user, "is_authenticated", False)):
        raise TapRefused(SIGN_IN_TO_WATCH)
    if mode not in TAP_MODES:
        raise TapRefused(f"Unknown tap mode {mode!r}: choose auto, bindings or firehose.")
    allowed = not audience and await database_sync_to_async(user_may_choose_firehose)(user, vhost)
    if mode == "firehose" and not allowed and not await asyncio.to_thread(tracing_is_on, vhost):
        raise TapRefused(
            "The firehose switches tracing on for the whole vhost: only a user an "
            "administrator allowed (the admin role, permission flows.use_firehose) can "
            "choose it here, and never on a read-only dashboard."
        )
    layer = consumer.channel_layer
    ticket = TapTicket(
        vhost=vhost,
        channel_name=consumer.channel_name,
        group=selection_group(vhost, selection.key),
        mode=mode,
        firehose_allowed=allowed,
        layer=layer,
        started_by=user.get_username(),
        selection=selection,
    )
    await layer.group_add(ticket.group, ticket.channel_name)
    if _runs_in_web_process():
        await (
            runtime()
            .tap_manager()
            .join(
                vhost,
                ticket.channel_name,
                mode=mode,
                firehose_allowed=allowed,
                started_by=ticket.started_by,
                selection=selection,
            )
        )
    else:
        # Before joining: a tap process starting meanwhile still reaches this viewer.
        await layer.group_add(viewers_group(), ticket.channel_name)
        await layer.send(control_channel(), _control_message("tap.join", ticket))
        ticket.heartbeat = asyncio.create_task(_heartbeat(ticket))
    return ticket


async def rejoin_tap(ticket: TapTicket) -> None:
    """A tap process started (`tap.process_started`): join it now, not at the next heartbeat.

    Nothing to do for a tap in this process. A join the tap process knows already only
    refreshes the viewer's heartbeat there.
    """
    if ticket.heartbeat is not None:
        await ticket.layer.send(control_channel(), _control_message("tap.join", ticket))


async def leave_tap(ticket: TapTicket) -> None:
    """Leave the group; the tap stops FLOWS_TAP_STOP_DELAY seconds after its last viewer."""
    if ticket.heartbeat is not None:
        ticket.heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticket.heartbeat
    await ticket.layer.group_discard(ticket.group, ticket.channel_name)
    if _runs_in_web_process():
        await runtime().tap_manager().leave(ticket.vhost, ticket.channel_name)
    else:
        await ticket.layer.group_discard(viewers_group(), ticket.channel_name)
        await ticket.layer.send(control_channel(), _control_message("tap.leave", ticket))


def _control_message(kind: str, ticket: TapTicket) -> dict[str, Any]:
    return {
        "type": kind,
        "vhost": ticket.vhost,
        "viewer": ticket.channel_name,
        "mode": ticket.mode,
        "firehose_allowed": ticket.firehose_allowed,
        "started_by": ticket.started_by,
        "selection": ticket.selection.as_message(),
    }


async def _heartbeat(ticket: TapTicket) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_INTERVAL_S)
        try:
            await ticket.layer.send(control_channel(), _control_message("tap.heartbeat", ticket))
        except Exception:  # a full control channel: the next beat will do
            LOGGER.warning("tap heartbeat for %r failed", ticket.vhost, exc_info=True)


def _restart_gap(duration_s: float) -> dict[str, Any]:
    """A gap in `Tap.status()`'s shape: the tap process restarted `duration_s` ago, at most."""
    return {
        "at": time.time() - duration_s,
        "duration_s": round(duration_s, 1),
        # The live page puts "Gap of 4.2 s: " before it; JSON viewers read duration_s.
        "message": "the tap process restarted: messages in that window were not captured",
    }


class ViewerStream:
    """Per connection: filter, then sample to `max_events_per_second`, then count.

    Sampling is a token bucket refilled at `max_events_per_second` and holding at most one
    second's worth, so a quiet stream shows every message and a burst shows an evenly
    spread selection of it rather than just its first few messages.
    """

    def __init__(
        self,
        event_filter: EventFilter,
        max_events_per_second: int | None = None,
        *,
        pretty_bodies: bool = True,
        selection_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_events_per_second is not None and max_events_per_second < 1:
            raise ValueError("max_events_per_second must be at least 1 (or None: no limit)")
        self.event_filter = event_filter
        self.max_events_per_second = max_events_per_second
        # Pretty-printing a JSON body is for people; a program taking every event of a
        # flood gets the body as published (`"pretty": false`) and formats it if it wants.
        self.pretty_bodies = pretty_bodies
        # The key of the selection (`flows.tap.selection`) the tap applies for this stream:
        # batches chosen by it are counted as the tap says, not filtered and sampled again.
        self.selection_key = selection_key
        self._clock = clock
        self._tokens = float(max_events_per_second or 0)
        self._refilled_at = clock()
        self._counts = dict.fromkeys(COUNT_NAMES, 0)
        self._drop_reasons: dict[str, int] = {}
        self._run: str | None = None
        self._next_seq: int | None = None
        # The tap process last heard from, when, and that tap's gaps then.
        self._process: str | None = None
        self._heard_at = 0.0
        self._tap_gaps: list[dict[str, Any]] = []
        # Since when this viewer has been without a tap (the one it watched went away).
        self._without_tap_since: float | None = None
        self._gaps: list[dict[str, Any]] = []  # restarts of the tap process, and earlier gaps

    def from_tap(self, message: M) -> M:
        """Note which tap process sent `message` (a `tap.batch` or `tap.status`); return it
        with this viewer's own gaps among its status's.

        Another process than the last one means the tap process this viewer watched went
        away and a new one took over: from the last word of the old one until the new tap
        runs, nothing was seen. That is a gap, kept with the old tap's own gaps (the new
        one knows nothing of them) and shown like them. Call it before the other methods.
        """
        status = message.get("status")
        if not isinstance(status, Mapping):
            return message
        now = self._clock()
        process = status.get("process")
        if process and process != self._process:
            if self._process is not None and self._without_tap_since is None:
                self._without_tap_since = self._heard_at
                self._keep_gaps(self._tap_gaps)
            self._process = process
        if self._without_tap_since is not None and status.get("state") == "running":
            self._keep_gaps([_restart_gap(now - self._without_tap_since)])
            self._without_tap_since = None
        self._heard_at = now
        self._tap_gaps = status.get("gaps") or []
        if not self._gaps:
            return message
        gaps = sorted([*self._tap_gaps, *self._gaps], key=lambda gap: gap.get("at", 0))
        return cast(M, {**message, "status": {**status, "gaps": gaps}})

    def _keep_gaps(self, gaps: list[dict[str, Any]]) -> None:
        self._gaps = [*self._gaps, *gaps][-MAX_VIEWER_GAPS:]

    def process_batch(self, message: Mapping[str, Any]) -> list[TapEvent]:
        """`process` for a whole `tap.batch` message, counting batches that never arrived.

        Sequence numbers run on without holes within one tap run, so a jump means batches
        this viewer missed (a full channel-layer queue, or the tap's own backlog): those
        count as dropped. A new run (the tap restarted) starts the count afresh.
        """
        events = self._arrived(message)
        chosen_by_tap = self._chosen_by_tap(message, len(events))
        if chosen_by_tap is None:
            return self.process(events)
        self._counts["received"] += chosen_by_tap
        self._counts["sent"] += chosen_by_tap
        return self._finished(events)

    def drop_batch(self, message: Mapping[str, Any], reason: str) -> None:
        """A `tap.batch` that reached this viewer but cannot be sent (its socket is backed
        up): what the filters let through counts as dropped, for `reason`; the rest as
        filtered out, as it would have been."""
        events = self._arrived(message)
        if self._chosen_by_tap(message, len(events)) is None:
            wanted = len(self._wanted(events))
            self._counts["received"] += len(events) - wanted
            self._counts["filtered_out"] += len(events) - wanted
        else:
            wanted = len(events)
        self.count_dropped(wanted, reason)  # received, and dropped

    def _chosen_by_tap(self, message: Mapping[str, Any], chosen: int) -> int | None:
        """For a batch the tap chose with this stream's selection: count what the tap took
        out (received, and filtered or sampled out) and return how many it chose (for the
        caller to count); None for a batch this stream must filter and sample itself."""
        if self.selection_key is None or message.get("selection") != self.selection_key:
            return None
        filtered, sampled = message.get("filtered_out", 0), message.get("sampled_out", 0)
        self._counts["received"] += filtered + sampled
        self._counts["filtered_out"] += filtered
        self._counts["sampled_out"] += sampled
        return chosen

    def _arrived(self, message: Mapping[str, Any]) -> list[TapEvent]:
        """A batch's events, once the batches missed before it are counted."""
        events = message.get("events") or []
        first_seq = message.get("first_seq", events[0]["seq"] if events else None)
        run = message.get("run")
        if run != self._run:
            self._run, self._next_seq = run, None
        if first_seq is not None and self._next_seq is not None and first_seq > self._next_seq:
            self.count_dropped(first_seq - self._next_seq, MISSED_BATCHES)
        # A batch the tap's selection emptied still covers its sequence numbers.
        last_seq = message.get("last_seq", events[-1]["seq"] if events else None)
        if last_seq is not None:
            self._next_seq = last_seq + 1
        return events

    def process_status(self, message: Mapping[str, Any]) -> None:
        """Count batches missed before a `tap.status` message (none may follow them).

        The status names the last sequence number the tap handed out; the channel layer
        keeps each channel's messages in order, so anything up to it not seen is lost.
        """
        status = message.get("status") or {}
        run, last_seq = status.get("run"), status.get("last_seq")
        if not isinstance(last_seq, int):
            return
        if run != self._run or self._next_seq is None:
            self._run, self._next_seq = run, last_seq + 1
            return
        if last_seq >= self._next_seq:
            self.count_dropped(last_seq + 1 - self._next_seq, MISSED_BATCHES)
            self._next_seq = last_seq + 1

    def process(self, events: list[TapEvent]) -> list[TapEvent]:
        """The events to send to this viewer, in order; every event is counted once.

        The events returned are ready to show: JSON bodies pretty-printed, unless the stream
        was made with `pretty_bodies=False` (they keep the text published, `"pretty": false`).
        """
        chosen, filtered, sampled = self.select(events)
        self._counts["received"] += len(events)
        self._counts["filtered_out"] += filtered
        self._counts["sampled_out"] += sampled
        self._counts["sent"] += len(chosen)
        return self._finished(chosen)

    def select(self, events: list[TapEvent]) -> tuple[list[TapEvent], int, int]:
        """(the events to send, how many the filter took out, how many sampling took out),
        counting nothing: the tap chooses for a whole selection group with this."""
        wanted = self._wanted(events)
        chosen = self._sample(wanted)
        return chosen, len(events) - len(wanted), len(wanted) - len(chosen)

    def _finished(self, chosen: list[TapEvent]) -> list[TapEvent]:
        if not self.pretty_bodies:
            return chosen
        return [prettify(event) for event in chosen]

    def _wanted(self, events: list[TapEvent]) -> list[TapEvent]:
        if self.event_filter.is_empty:
            return events
        return [event for event in events if self.event_filter.matches(event)]

    def _sample(self, events: list[TapEvent]) -> list[TapEvent]:
        limit = self.max_events_per_second
        if limit is None or not events:
            return events
        now = self._clock()
        self._tokens = min(float(limit), self._tokens + (now - self._refilled_at) * limit)
        self._refilled_at = now
        allowed = min(len(events), int(self._tokens))
        self._tokens -= allowed
        if allowed == len(events):
            return events
        if allowed == 0:
            return []
        # Evenly spread over the batch: index i * n / allowed for i in 0..allowed-1.
        step = len(events) / allowed
        return [events[int(i * step)] for i in range(allowed)]

    def count_dropped(self, n: int, reason: str, *, already_processed: bool = False) -> None:
        """Count `n` events this viewer will not get, with the reason (e.g. a slow viewer).

        By default they are events that reached this viewer and were dropped without going
        through `process` (say, a whole batch while the socket is backed up): they count as
        received and dropped. With `already_processed=True` they are events `process`
        returned that could not be sent after all: they move from sent to dropped.
        """
        if n < 0:
            raise ValueError("n must not be negative")
        if already_processed:
            if n > self._counts["sent"]:
                raise ValueError("cannot drop more events than were sent")
            self._counts["sent"] -= n
        else:
            self._counts["received"] += n
        self._counts["dropped"] += n
        self._drop_reasons[reason] = self._drop_reasons.get(reason, 0) + n

    @property
    def counts(self) -> dict[str, Any]:
        """The COUNT_NAMES with their values, and drop_reasons (n by reason)."""
        return {**self._counts, "drop_reasons": dict(self._drop_reasons)}
