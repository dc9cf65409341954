"""Which taps run, for whom: one tap per watched vhost, on the asyncio side.

A `TapRunner` owns one `Tap` (a pika thread) and forwards its batches to the vhost's
channel-layer group, one `group_send` per batch. The `TapManager` counts viewers per vhost:
the first viewer starts the tap, and the tap stops `FLOWS_TAP_STOP_DELAY` seconds after the
last one left (a reload does not restart it). The same manager runs inside the web process
(in-memory channel layer) or inside `manage.py tap` (Redis), where viewers join and
heart-beat through the channel layer instead of calling it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from flows.tap.firehose import firehose_configured
from flows.tap.groups import selection_group
from flows.tap.modes import CaptureMode
from flows.tap.selection import EVERYTHING, Prefilter, Selection
from flows.tap.tap import SharedEvents, SharedStatus, Tap, TapSettings
from flows.tap.viewer import ViewerStream

LOGGER = logging.getLogger(__name__)

LAYER_BACKLOG_REASON = "channel layer backlog (viewers too slow)"
# Batches waiting for the channel layer before newer ones are dropped (about 10 s of them).
MAX_BACKLOG_BATCHES = 200


def tracing_is_on(vhost: str) -> bool:
    """Blocking (management API): tracing is on for the vhost; False when it cannot tell."""
    from flows.broker.errors import BrokerError
    from flows.runtime import runtime

    try:
        return runtime().management_client.vhost(vhost).tracing
    except BrokerError:
        return False


class TapRunner:
    """One running tap and the task that forwards its batches to the group.

    Every status it sends is *as of the last batch forwarded*: its `last_seq` and its
    `counts.received` cover exactly the batches already handed to the channel layer (or
    dropped here, and counted), never those still waiting in the inbox. A viewer takes any
    sequence number up to `last_seq` it has not seen as lost, so a status that ran ahead of
    the batches queued behind it made viewers count as missed batches that then arrived
    (phantom drops: counted twice, once dropped and once received).
    """

    def __init__(
        self,
        vhost: str,
        mode: CaptureMode,
        layer,
        tap_settings: TapSettings,
        *,
        started_by: str = "",
        process: str = "",
    ) -> None:
        self.vhost = vhost
        self.mode = mode
        self.run_id = uuid.uuid4().hex[:12]
        self.process = process  # the manager's `process_id`, in every status
        self._layer = layer
        # The selections its viewers asked for (`flows.tap.selection`), each chosen once
        # per batch for its group; and which viewer asked for which.
        self._selections: dict[str, _SelectionGroup] = {}
        self._viewer_selections: dict[str, str] = {}
        self._loop = asyncio.get_running_loop()
        # (events, the tap's status with them, the last seq handed over up to them, and how
        # many events the tap handed over up to them): the last two survive a dropped batch.
        self._inbox: asyncio.Queue[tuple[SharedEvents, dict, int, int]] = asyncio.Queue()
        self._layer_dropped = 0
        self._received_seq = 0  # from the tap thread, in the inbox or beyond
        self._received_events = 0
        self._forwarded_seq = 0  # handed to the channel layer (or dropped, and counted)
        self._forwarded_events = 0
        self._last_status: dict[str, Any] = {}
        self.tap = Tap(
            vhost, mode, self._from_tap_thread, tap_settings=tap_settings, started_by=started_by
        )
        self._task: asyncio.Task | None = None
        self._stopping = False

    def add_viewer(self, viewer: str, selection: Selection) -> None:
        """Send `viewer`'s selection to its group from the next batch on."""
        self.remove_viewer(viewer)
        group = self._selections.get(selection.key)
        if group is None:
            group = self._selections[selection.key] = _SelectionGroup(self.vhost, selection)
        group.viewers.add(viewer)
        self._viewer_selections[viewer] = selection.key
        self._selections_changed()

    def remove_viewer(self, viewer: str) -> None:
        key = self._viewer_selections.pop(viewer, None)
        group = self._selections.get(key) if key is not None else None
        if group is not None:
            group.viewers.discard(viewer)
            if not group.viewers:
                del self._selections[group.selection.key]
                self._selections_changed()

    def _selections_changed(self) -> None:
        # What no selection wants is ruled out by the tap before an event is made of it
        # (`Prefilter`). A batch on its way as this changes still goes to every group, its
        # ruled-out messages counted as filtered out: the counts add up either way.
        self.tap.set_prefilter(Prefilter.of(group.selection for group in self._selections.values()))

    def start(self) -> None:
        self.tap.start()
        self._task = asyncio.create_task(self._forward(), name=f"tap forward {self.vhost!r}")

    def _from_tap_thread(self, events: SharedEvents, status: dict) -> None:
        # RuntimeError: the loop closed under us (process exit).
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._receive, events, status)

    def _receive(self, events: SharedEvents, status: dict) -> None:
        covered = events.covers()
        if covered is not None:
            self._received_seq = covered[1]
            self._received_events += events.received
        if covered is not None and self._inbox.qsize() >= MAX_BACKLOG_BATCHES:
            # Viewers see the seq gap and count it; the tap's counts say why.
            self._layer_dropped += events.received
            events = SharedEvents()
        self._inbox.put_nowait((events, status, self._received_seq, self._received_events))

    def status(
        self, status: dict | None = None, *, as_of: tuple[int, int] | None = None
    ) -> dict[str, Any]:
        """The tap's status as viewers get it, as of (last seq, events) `as_of`: by default
        the last batch forwarded."""
        last_seq, received = as_of or (self._forwarded_seq, self._forwarded_events)
        status = dict(status or self._last_status or self.tap.status())
        counts = dict(status.get("counts") or {})
        # The tap thread's own count may already include batches still in the inbox.
        counts["received"] = received
        counts["layer_dropped"] = self._layer_dropped
        if self._layer_dropped:
            counts["drop_reasons"] = {
                **counts.get("drop_reasons", {}),
                LAYER_BACKLOG_REASON: self._layer_dropped,
            }
        status["counts"] = counts
        status["run"] = self.run_id
        status["process"] = self.process
        status["last_seq"] = last_seq
        return SharedStatus(status)

    async def _forward(self) -> None:
        while True:
            try:
                events, status, last_seq, received = await asyncio.wait_for(
                    self._inbox.get(), timeout=1.0
                )
            except TimeoutError:
                # A quiet second: the tap's fresh status (state, overflow), as of what
                # was forwarded already.
                events, status = SharedEvents(), self.tap.status()
                last_seq, received = self._forwarded_seq, self._forwarded_events
            self._last_status = status
            full = self.status(status, as_of=(last_seq, received))
            try:
                if events.covers() is not None:
                    await self._send_batch(events, full)
                else:
                    await self.send_status(full)
            except Exception:
                LOGGER.exception("could not forward tap batch for %r", self.vhost)
            # Only now: a status sent meanwhile (a viewer joining) must not claim this batch
            # before the batch itself is on its way.
            self._forwarded_seq, self._forwarded_events = last_seq, received
            if self._stopping and not self.tap.running and self._inbox.empty():
                return

    async def _send_batch(self, events: SharedEvents, status: dict) -> None:
        """The batch to each selection's group, as that selection chooses it: the filtered-
        out flood goes no further than here (not through Redis, not to any socket), and what
        the tap ruled out (`events.skipped`) is filtered out for every group."""
        covered = events.covers()
        assert covered is not None
        first_seq, last_seq = covered
        for group in list(self._selections.values()):
            chosen, filtered_out, sampled_out = group.chooser.select(events)
            filtered_out += events.skipped
            await self._layer.group_send(
                group.name,
                {
                    "type": "tap.batch",
                    "vhost": self.vhost,
                    "run": self.run_id,
                    "first_seq": first_seq,
                    "last_seq": last_seq,
                    # Shared, read-only, by every viewer (`SharedEvents`): never copied.
                    "events": chosen if chosen is events else SharedEvents(chosen),
                    "selection": group.selection.key,
                    "filtered_out": filtered_out,
                    "sampled_out": sampled_out,
                    "status": status,
                },
            )

    async def send_status(self, status: dict | None = None, *, channel: str | None = None):
        message = {"type": "tap.status", "vhost": self.vhost, "status": status or self.status()}
        if channel is not None:
            await self._layer.send(channel, message)
            return
        for group in list(self._selections.values()):
            await self._layer.group_send(group.name, message)

    async def stop(self) -> None:
        self._stopping = True
        await asyncio.to_thread(self.tap.stop)
        # Let the forwarder deliver what the tap flushed last, including "stopped".
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=5)
            except TimeoutError:
                self._task.cancel()


class _SelectionGroup:
    """The viewers of one tap that share a selection, its group, and its sampling state."""

    def __init__(self, vhost: str, selection: Selection) -> None:
        self.selection = selection
        self.name = selection_group(vhost, selection.key)
        self.chooser = ViewerStream(selection.event_filter(), selection.max_rate)
        self.viewers: set[str] = set()


class TapManager:
    """Refcounted taps per vhost for one process, on one event loop (`flows.runtime` holds it)."""

    def __init__(self) -> None:
        from channels.layers import get_channel_layer
        from django.conf import settings

        self.layer = get_channel_layer()
        # Names this manager's taps in their statuses: a viewer that hears from another one
        # knows the tap process it watched through restarted, and tells of the gap.
        self.process_id = uuid.uuid4().hex[:12]
        self.stop_delay_s: float = settings.FLOWS_TAP_STOP_DELAY
        self.tap_settings = TapSettings.from_django()
        self.runners: dict[str, TapRunner] = {}
        self.viewers: dict[str, dict[str, float]] = {}  # vhost -> viewer -> last seen
        self.selections: dict[str, dict[str, Selection]] = {}  # vhost -> viewer -> selection
        self._stop_tasks: dict[str, asyncio.Task] = {}
        self._lock = asyncio.Lock()
        self._restored_stale = False

    async def resolve_mode(
        self, vhost: str, requested: str, *, firehose_allowed: bool
    ) -> CaptureMode:
        """`auto` is the firehose where tracing is on or configured, bindings otherwise.

        Holding the `flows.use_firehose` permission (`firehose_allowed`) does not make `auto`
        switch tracing on: that costs the whole vhost throughput, so it takes an explicit
        `mode=firehose` (which `join_tap` refuses to those not allowed).
        """
        if requested == "bindings":
            return "bindings"
        if requested == "firehose":
            return "firehose"
        if firehose_configured(vhost) or await asyncio.to_thread(tracing_is_on, vhost):
            return "firehose"
        return "bindings"

    async def join(
        self,
        vhost: str,
        viewer: str,
        *,
        mode: str = "auto",
        firehose_allowed: bool = False,
        started_by: str = "",
        selection: Selection = EVERYTHING,
    ) -> TapRunner:
        """`started_by`: the viewer's user, named in the audit log if this starts the tap;
        `selection`: what of each batch the viewer is sent (its group's)."""
        resolved = await self.resolve_mode(vhost, mode, firehose_allowed=firehose_allowed)
        async with self._lock:
            if not self._restored_stale:
                self._restored_stale = True
                await asyncio.to_thread(_restore_stale_quietly)
            pending = self._stop_tasks.pop(vhost, None)
            if pending is not None:
                pending.cancel()
            self.viewers.setdefault(vhost, {})[viewer] = time.monotonic()
            self.selections.setdefault(vhost, {})[viewer] = selection
            runner = self.runners.get(vhost)
            if runner is not None and (
                not runner.tap.running or (runner.mode == "bindings" and resolved == "firehose")
            ):
                # Upgrade to the firehose (it sees everything bindings see, and more), or
                # replace a tap that gave up.
                await runner.stop()
                runner = None
            if runner is None:
                runner = TapRunner(
                    vhost,
                    resolved,
                    self.layer,
                    self.tap_settings,
                    started_by=started_by,
                    process=self.process_id,
                )
                for known, chosen in self.selections[vhost].items():
                    runner.add_viewer(known, chosen)
                runner.start()
                self.runners[vhost] = runner
            else:
                runner.add_viewer(viewer, selection)
        await runner.send_status(channel=viewer)
        return runner

    async def touch(self, vhost: str, viewer: str, **join_options: Any) -> None:
        """A heartbeat: keep the viewer, or (re)join it if this process did not know it."""
        known = self.viewers.get(vhost, {})
        if viewer in known and vhost in self.runners:
            known[viewer] = time.monotonic()
        else:
            await self.join(vhost, viewer, **join_options)

    async def leave(self, vhost: str, viewer: str) -> None:
        async with self._lock:
            viewers = self.viewers.get(vhost, {})
            viewers.pop(viewer, None)
            self.selections.get(vhost, {}).pop(viewer, None)
            runner = self.runners.get(vhost)
            if runner is not None:
                runner.remove_viewer(viewer)
            if not viewers and vhost in self.runners and vhost not in self._stop_tasks:
                self._stop_tasks[vhost] = asyncio.create_task(self._stop_later(vhost))

    async def expire(self, max_age_s: float) -> None:
        """Forget viewers not heard from for `max_age_s` (their process died)."""
        cutoff = time.monotonic() - max_age_s
        for vhost, viewers in list(self.viewers.items()):
            for viewer, seen in list(viewers.items()):
                if seen < cutoff:
                    await self.leave(vhost, viewer)

    async def _stop_later(self, vhost: str) -> None:
        await asyncio.sleep(self.stop_delay_s)
        async with self._lock:
            if self.viewers.get(vhost):
                return
            self._stop_tasks.pop(vhost, None)
            runner = self.runners.pop(vhost, None)
        if runner is not None:
            LOGGER.info("nobody watches %r any more: stopping its tap", vhost)
            await runner.stop()

    async def stop_all(self) -> None:
        for task in self._stop_tasks.values():
            task.cancel()
        self._stop_tasks.clear()
        runners = list(self.runners.values())
        self.runners.clear()
        self.viewers.clear()
        self.selections.clear()
        await asyncio.gather(*(runner.stop() for runner in runners))

    def stop_all_blocking(self) -> None:
        """From another thread once the loop has ended (interpreter exit): stop the tap threads,
        so their queues go and tracing is restored."""
        for runner in list(self.runners.values()):
            runner.tap.stop(timeout=5)


def restore_tracing_left_by_dead_taps() -> None:
    """In a web process that runs the taps, as it starts: put back the tracing a dashboard
    killed before it could (kill -9, power cut) left switched on.

    Without this, tracing stayed on until a viewer opened a live page, which may never
    happen. `manage.py tap` does the same when it starts (when the taps run there). Blocking,
    but cheap: one query, and a call to the management API only for a lease left behind.
    """
    from django.conf import settings
    from django.db import connection

    if settings.FLOWS_TAP_RUNS_IN != "web":
        return
    try:
        _restore_stale_quietly()
    finally:
        connection.close()  # this thread serves no request: keep no connection open


def _restore_stale_quietly() -> None:
    from flows.tap.firehose import restore_stale_leases

    try:
        restore_stale_leases()
    except Exception:
        LOGGER.exception("could not restore tracing left on by a dead tap")
