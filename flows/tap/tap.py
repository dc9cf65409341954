"""One vhost's tap: a pika consumer on its own thread, reading only its own queue.

The tap declares one exclusive, auto-delete, length-bounded queue (`x-max-length`,
`x-overflow: drop-head`), so a stuck tap can never fill the broker and a dead tap's queue
dies with its connection. It binds that queue either to every exchange (bindings mode,
kept in sync with the management API) or to `amq.rabbitmq.trace` (firehose mode). Messages
the bounded queue drops are dead-lettered into a second exclusive queue that nobody
consumes: purging it tells exactly how many were lost, so the counts add up.

Deliveries are normalised once (`flows.tap.events`), buffered, acked in bulk, and handed
to `sink(events, status)` in batches, on the tap thread: the sink must hand them over
thread-safely (the runner uses `loop.call_soon_threadsafe`). Batching is leading-edge: a
quiet tap hands over an event the moment it arrives (at most one batch per `quiet_gap_s`),
and only once batches fill up (`busy_batch_events`) does it hold events for
`batch_interval_s` (or until `batch_max_events`), so a busy tap still sends a few large
batches a second, never one per message. The tap never touches a queue it did not declare.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from flows.broker.amqp import open_blocking_connection
from flows.broker.errors import BrokerError
from flows.broker.naming import dashboard_object_name
from flows.masking import DEFAULT_MASK, Mask, configured_mask
from flows.runtime import runtime
from flows.tap import firehose
from flows.tap.consumer_pool import Batch, ConsumerPool
from flows.tap.consumer_process import Config as ConsumerConfig
from flows.tap.coverage import TRACE_EXCHANGE, TapBinding, firehose_coverage, plan_bindings
from flows.tap.deliveries import IGNORED, RULED_OUT, delivery_event
from flows.tap.events import (
    DEFAULT_PREVIEW_LIMIT,
    TapEvent,
    correct_default_routes,
)
from flows.tap.modes import CAPTURE_MODES, CaptureMode
from flows.tap.selection import Prefilter

LOGGER = logging.getLogger(__name__)

OVERFLOW_REASON = "tap queue overflowed on the broker"
MAX_GAPS_KEPT = 20
# Deliveries are acked in bulk: when half the prefetch window is unacked, and otherwise at
# most this often.
ACK_INTERVAL_S = 0.1
# A tap holding a batch (not due yet), whose last read took fewer deliveries than this,
# lets them gather for up to `GATHER_S` (never past the batch's due time) before reading
# again: one read of many frames costs far less than a poll, a read and a loop per message
# or two, and the batch leaves no later for it.
GATHER_BELOW = 200
GATHER_S = 0.01


class SharedEvents(list[TapEvent]):
    """A batch of events shared, read-only, by every viewer of a tap.

    The in-memory channel layer deep-copies each message for each receiver; for thousands
    of events a second that copy costs more than everything else. Viewers never change
    events, so one batch can be shared. (channels_redis serialises it as a plain list.)

    A batch from the tap also says which sequence numbers it covers: its events', and
    those of the messages its prefilter ruled out (`skipped`: received, and made into no
    event, `flows.tap.selection.Prefilter`).
    """

    first_seq: int | None = None
    last_seq: int | None = None
    skipped = 0

    def covers(self) -> tuple[int, int] | None:
        """(first, last) sequence number, or None for a batch that covers none."""
        if self.last_seq is not None and self.first_seq is not None:
            return self.first_seq, self.last_seq
        if self:
            return self[0]["seq"], self[-1]["seq"]
        return None

    @property
    def received(self) -> int:
        """Messages the batch accounts for: its events and those ruled out."""
        return len(self) + self.skipped

    def __deepcopy__(self, memo: dict) -> SharedEvents:
        return self


# Called on the tap's thread with each batch and the tap's status with it.
Sink = Callable[[SharedEvents, dict[str, Any]], None]


class SharedStatus(dict):
    """A status shared, read-only, by every viewer (coverage lists can be long)."""

    def __deepcopy__(self, memo: dict) -> SharedStatus:
        return self


@dataclass(frozen=True)
class TapSettings:
    queue_max_length: int = 50_000
    preview_limit: int = DEFAULT_PREVIEW_LIMIT
    # While busy (the last batch had `busy_batch_events` or more): one batch per interval.
    # It bounds the latency a busy tap adds (p99 publish-to-viewer at most 50 ms at 1,000
    # msg/s is the aim, benchmarks/tap_bench.py); 40 batches a second cost little.
    batch_interval_s: float = 0.025
    batch_max_events: int = 500
    # While quiet: an event goes out at once, batches at most this often.
    quiet_gap_s: float = 0.025
    busy_batch_events: int = 8
    prefetch: int = 2_000
    sync_interval_s: float = 2.0
    # Between reconnect attempts while the broker is away. Short on purpose: a restarted
    # broker should be watched again within a second or so of being back (with a 10 s cap
    # the tap came back up to 10 s late), and a refused TCP connect costs nothing.
    reconnect_max_delay_s: float = 1.0
    # What events hide (FLOWS_MASK): applied as each event is made, before anyone sees it.
    mask: Mask = DEFAULT_MASK
    # Consumers on the tap queue: the tap's own, and `consumers - 1` processes of their own
    # (`flows.tap.consumer_process`) when one core cannot take the vhost's traffic.
    consumers: int = 1

    @classmethod
    def from_django(cls) -> TapSettings:
        from django.conf import settings

        return cls(
            queue_max_length=settings.FLOWS_TAP_QUEUE_MAX_LENGTH,
            preview_limit=settings.FLOWS_TAP_PREVIEW_LIMIT,
            sync_interval_s=settings.FLOWS_TAP_SYNC_INTERVAL,
            mask=configured_mask(),
            consumers=settings.FLOWS_TAP_CONSUMERS,
        )


class _Stopping(Exception):
    pass


class _ExistingQueues:
    """Queue existence for the firehose's default-exchange check, on the tap thread.

    The management API's list (refreshed each sync) answers most questions; a queue it
    does not list yet may be seconds old, so a miss is checked with a passive declare on
    the control channel (a 404 closes that channel: it is reopened), and a queue found
    missing is not asked about again for a second.
    """

    def __init__(self, tap: Tap) -> None:
        self._tap = tap
        self._missing: dict[str, float] = {}

    def __contains__(self, name: object) -> bool:
        known = self._tap._existing_queues
        if not isinstance(name, str) or known is None or name in known:
            return True
        now = time.monotonic()
        if now - self._missing.get(name, -10.0) < 1.0:
            return False
        if self._tap._passive_declare(name):
            known.add(name)
            return True
        if len(self._missing) > 10_000:
            self._missing.clear()
        self._missing[name] = now
        return False


class Tap:
    """Capture a vhost's messages in one mode until `stop()`; report through `sink`."""

    def __init__(
        self,
        vhost: str,
        mode: CaptureMode,
        sink: Sink,
        *,
        tap_settings: TapSettings | None = None,
        started_by: str = "",
    ) -> None:
        if mode not in CAPTURE_MODES:
            raise ValueError(f"mode must be one of {CAPTURE_MODES}, not {mode!r}")
        self.vhost = vhost
        self.mode = mode
        self.started_by = started_by  # the user whose viewer started it (the audit log's who)
        self.settings = tap_settings or TapSettings()
        self._sink = sink
        # The process's, held for the tap's whole life: the stop restores tracing through it.
        self._client = runtime().management_client
        self._observations = runtime().firehose_observations
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"flows-tap {vhost!r}", daemon=True)
        self._sync_thread = threading.Thread(
            target=self._sync_loop, name=f"flows-tap-sync {vhost!r}", daemon=True
        )
        # Shared between the threads (under _lock).
        self._state = "starting"
        self._error: str | None = None
        self._coverage: dict[str, Any] = {
            "exchanges": [],
            "direct_keys": {},
            "not_covered": [],
            "not_covered_reasons": {},
            "warnings": [],
        }
        self._desired: set[TapBinding] | None = None
        self._existing_queues: set[str] | None = None
        self._gaps: list[dict[str, Any]] = []
        self._sync_warning: str | None = None
        self._consumers: dict[str, Any] = {
            "processes": self.settings.consumers,
            "running": 0,
            "restarts": 0,
            "merged": 0,
            "error": None,
        }
        # Tap-thread only.
        self._seq = 0
        self._flushed_seq = 0  # the last sequence number handed over
        self._skipped = 0  # ruled out by the prefilter since the last hand-over
        self._prefilter: Prefilter | None = None  # set from the event loop's thread
        self._received = 0
        self._ruled_out = 0
        self._ignored_own = 0
        self._overflow_dropped = 0
        self._buffer: list[TapEvent] = []
        self._last_flush = time.monotonic()
        self._flush_gap = self.settings.quiet_gap_s  # the hold after the last flush
        self._unacked_tag = 0
        self._acked_tag = 0
        self._acked_at = 0.0
        self._bound: set[TapBinding] = set()
        self._lease: firehose.Lease | None = None
        self.queue_name: str | None = None
        self._status_dirty = True
        self._observing = False
        self._connection: BlockingConnection | None = None
        self._control: BlockingChannel | None = None
        self._queue_check = _ExistingQueues(self)
        self._pool: ConsumerPool | None = None

    # --- public --------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop consuming, delete the tap's queues, restore tracing; wait for all that."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._sync_thread.is_alive():
            self._sync_thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        with self._lock:
            coverage = dict(self._coverage)
            if self._sync_warning:
                coverage["warnings"] = [*coverage["warnings"], self._sync_warning]
            return {
                "mode": self.mode,
                "state": self._state,
                "coverage": coverage,
                "counts": {
                    "received": self._received,
                    "overflow_dropped": self._overflow_dropped,
                    "drop_reasons": (
                        {OVERFLOW_REASON: self._overflow_dropped} if self._overflow_dropped else {}
                    ),
                    "ignored_own": self._ignored_own,
                    # Of `received`: ruled out by the prefilter, never made into an event.
                    "ruled_out": self._ruled_out,
                },
                "gaps": list(self._gaps),
                "consumers": self._consumers,
                "error": self._error,
                "queue": self.queue_name,
            }

    # --- state ---------------------------------------------------------------------------

    def _set_state(self, state: str, error: str | None = None) -> None:
        with self._lock:
            self._state = state
            self._error = error
        self._status_dirty = True

    # --- the tap thread ------------------------------------------------------------------

    def _run(self) -> None:
        delay = 0.5
        disconnected_at: float | None = None
        ever_connected = False
        try:
            if self.mode == "firehose":
                try:
                    self._lease = firehose.acquire_lease(
                        self.vhost, client=self._client, started_by=self.started_by
                    )
                except BrokerError as exc:
                    self._set_state("error", f"Could not switch tracing on: {exc.message}")
                    self._emit_status()
                    return
            self._sync_once()
            self._sync_thread.start()
            while not self._stop.is_set():
                connected_at = None
                try:
                    connection = open_blocking_connection(
                        vhost=self.vhost, purpose=f"tap ({self.mode}) {self.vhost}"
                    )
                except BrokerError as exc:
                    disconnected_at = disconnected_at or time.time()
                    # A tap that ran before is reconnecting (even if it saw no message yet);
                    # one that never connected has an error to show.
                    state = "reconnecting" if ever_connected else "error"
                    self._set_state(state, exc.message)
                    self._emit_status()
                else:
                    connected_at = time.monotonic()
                    ever_connected = True
                    if disconnected_at is not None:
                        self._record_gap(disconnected_at)
                        disconnected_at = None
                    try:
                        self._serve(connection)
                        return
                    except _Stopping:
                        return
                    except (pika.exceptions.AMQPError, OSError, BrokerError) as exc:
                        disconnected_at = time.time()
                        LOGGER.warning("tap on %r lost its connection: %r", self.vhost, exc)
                        self._set_state("reconnecting", "Connection to the broker lost")
                        self._flush(force=True)  # what arrived before the loss still goes out
                        self._emit_status()  # and viewers learn of the loss at once
                    finally:
                        self._close_quietly(connection)
                if connected_at is not None and time.monotonic() - connected_at > 10:
                    delay = 0.5
                self._stop.wait(delay)
                delay = min(delay * 2, self.settings.reconnect_max_delay_s)
        except Exception as exc:  # a bug must still leave the broker clean and say so
            LOGGER.exception("tap on %r failed", self.vhost)
            self._set_state("error", f"The tap failed: {exc!r}")
        finally:
            self._stop.set()
            if self._observing:
                self._observations.firehose_stopped(self.vhost)
                self._observing = False
            if self._lease is not None:
                try:
                    firehose.release_lease(self._lease, client=self._client)
                except Exception:
                    LOGGER.exception("could not restore tracing on %r", self.vhost)
            with self._lock:
                if self._state != "error":
                    self._state = "stopped"
            self._emit_status()

    def _record_gap(self, disconnected_at: float) -> None:
        duration = time.time() - disconnected_at
        gap = {
            "at": disconnected_at,
            "duration_s": round(duration, 1),
            "message": (
                f"disconnected {duration:.1f} s: messages in that window were not captured"
            ),
        }
        with self._lock:
            self._gaps = [*self._gaps, gap][-MAX_GAPS_KEPT:]
        self._status_dirty = True

    def _serve(self, connection: BlockingConnection) -> None:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=self.settings.prefetch)
        unique = uuid.uuid4().hex[:12]
        queue = dashboard_object_name("tap", unique)
        overflow = dashboard_object_name("tap", unique + ".overflow")
        channel.queue_declare(
            overflow,
            exclusive=True,
            auto_delete=True,
            # Purged (and counted) twice a second; room for far more than that meanwhile.
            arguments={"x-max-length": max(self.settings.queue_max_length * 10, 100_000)},
        )
        shared = self.settings.consumers > 1
        arguments: dict[str, Any] = {
            "x-max-length": self.settings.queue_max_length,
            "x-overflow": "drop-head",
            # What drop-head drops lands in the overflow queue, to be counted.
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": overflow,
        }
        if shared:
            # Consumed by other connections too, so not exclusive: it goes with its last
            # consumer (auto-delete; every consumer process ends with the tap), and one that
            # never had any expires (x-expires).
            arguments["x-expires"] = 60_000
        channel.queue_declare(queue, exclusive=not shared, auto_delete=True, arguments=arguments)
        self.queue_name = queue
        self._bound = set()
        if self.mode == "firehose":
            assert self._lease is not None
            if firehose.ensure_tracing(self._lease, client=self._client):
                LOGGER.warning("tracing was off on %r (broker restart?): on again", self.vhost)
            channel.queue_bind(queue, TRACE_EXCHANGE, routing_key="#")
            if not self._observing:
                self._observations.firehose_started(self.vhost)
                self._observing = True
        control = connection.channel()
        control = self._apply_bindings(connection, control, queue)
        self._connection, self._control = connection, control

        channel.basic_consume(queue, self._on_delivery, auto_ack=False)
        self._acked_tag = self._unacked_tag = 0
        pool = self._pool = self._start_pool(queue) if shared else None
        try:
            self._consume(connection, channel, queue, overflow)
        finally:
            if pool is not None:  # a lost connection: its consumers go with this queue
                self._merge(pool.stop())
                self._pool = None

    def _start_pool(self, queue: str) -> ConsumerPool:
        from flows.broker.amqp import amqp_urls

        pool = ConsumerPool(
            ConsumerConfig(
                urls=amqp_urls(),
                vhost=self.vhost,
                queue=queue,
                mode=self.mode,
                prefetch=self.settings.prefetch,
                preview_limit=self.settings.preview_limit,
                mask=list(self.settings.mask.patterns),
                name=f"flows-dashboard: tap ({self.mode}) {self.vhost} consumer",
            ),
            self.settings.consumers - 1,
        )
        pool.start()
        return pool

    def _consume(
        self, connection: BlockingConnection, channel: BlockingChannel, queue: str, overflow: str
    ) -> None:
        pool = self._pool
        if pool is not None:
            self._set_consumers(pool.status())
        else:
            self._set_consumers(
                {"processes": 1, "running": 1, "restarts": 0, "merged": 0, "error": None}
            )
        self._set_state("running")
        self._emit_status()
        last_overflow_check = time.monotonic()
        last_status = time.monotonic()
        last_tag = 0  # the last delivery tag before the latest read
        while True:
            if self._stop.is_set():
                if pool is not None:
                    # Its consumers first: what they made still goes out, the rest of what
                    # they held goes back to the queue, for this consumer to take.
                    self._merge(pool.stop())
                    connection.process_data_events(time_limit=0.05)
                self._flush(force=True)
                self._ack(channel)
                channel.basic_cancel(consumer_tag=channel.consumer_tags[0])
                control = self._open_control(connection)
                self._count_overflow(control, overflow)
                channel.queue_delete(queue)
                control.queue_delete(overflow)
                raise _Stopping
            # Wake no later than the buffer is due, so a held batch is not late.
            limit = self.settings.batch_interval_s
            if self._buffer or self._skipped:
                due = self._last_flush + self._flush_gap - time.monotonic()
                limit = min(limit, max(due, 0.001))
            if pool is not None:
                # Its consumers' batches wait for this loop: wake often for them.
                limit = min(limit, 0.005)
            if (self._buffer or self._skipped) and self._unacked_tag - last_tag < GATHER_BELOW:
                # Held until `due` anyway: what arrives meanwhile is read in one go.
                gather = min(limit, GATHER_S)
                if gather > 0.001:
                    time.sleep(gather)
                    limit = 0.0
            last_tag = self._unacked_tag
            connection.process_data_events(time_limit=limit)
            if pool is not None:
                if pool.prefilter is not self._prefilter:
                    pool.set_prefilter(self._prefilter)
                self._merge(pool.take())
                self._set_consumers(pool.status())
            now = time.monotonic()
            # Acks in bulk, not after every dispatch round: each `basic_ack` of a blocking
            # channel runs pika's I/O loop until it is written (a third of the tap's CPU
            # when it acked every round under load). The queue is the tap's own and dies
            # with it, so a late ack loses nothing; this keeps the prefetch window open.
            if now - self._acked_at >= ACK_INTERVAL_S:
                self._ack(channel)
            if now - last_overflow_check >= 0.5:
                control = self._open_control(connection)  # a passive declare may close it
                control = self._apply_bindings(connection, control, queue)
                self._control = control
                self._count_overflow(control, overflow)
                last_overflow_check = now
            self._flush()
            if self._status_dirty or now - last_status >= 1.0:
                if not self._buffer and not self._skipped:
                    self._emit_status()
                last_status = now

    def _open_control(self, connection: BlockingConnection) -> BlockingChannel:
        if self._control is None or not self._control.is_open:
            self._control = connection.channel()
        return self._control

    def _ack(self, channel: BlockingChannel) -> None:
        self._acked_at = time.monotonic()
        if self._unacked_tag > self._acked_tag:
            channel.basic_ack(self._unacked_tag, multiple=True)
            self._acked_tag = self._unacked_tag

    def _count_overflow(self, control: BlockingChannel, overflow_queue: str) -> None:
        purged = control.queue_purge(overflow_queue).method.message_count
        if purged:
            with self._lock:
                self._overflow_dropped += purged
            self._status_dirty = True

    def _apply_bindings(
        self, connection: BlockingConnection, control: BlockingChannel, queue: str
    ) -> BlockingChannel:
        """Bring the tap queue's bindings to what the last sync planned.

        Runs on a channel of its own: binding to an exchange deleted a moment ago closes the
        channel (404), which must not stop the consumer. The next sync corrects the plan.
        """
        if self.mode != "bindings":
            return control
        with self._lock:
            desired = set(self._desired or set())
        for binding in sorted(self._bound - desired, key=repr):
            try:
                if not control.is_open:
                    control = connection.channel()
                control.queue_unbind(
                    queue, binding.exchange, binding.routing_key, arguments=binding.arguments_dict
                )
            except pika.exceptions.ChannelClosedByBroker:
                pass  # the exchange is gone, and its bindings with it
            self._bound.discard(binding)
        for binding in sorted(desired - self._bound, key=repr):
            try:
                if not control.is_open:
                    control = connection.channel()
                control.queue_bind(
                    queue, binding.exchange, binding.routing_key, arguments=binding.arguments_dict
                )
                self._bound.add(binding)
            except pika.exceptions.ChannelClosedByBroker as exc:
                LOGGER.info("tap could not bind to %r: %s", binding.exchange, exc)
        if not control.is_open:
            control = connection.channel()
        return control

    # --- deliveries ----------------------------------------------------------------------

    def set_prefilter(self, prefilter: Prefilter | None) -> None:
        """From any thread: rule out, from the next delivery on, what `prefilter` does not
        want (None: make every message an event)."""
        self._prefilter = prefilter

    def _on_delivery(self, channel, method, properties, body: bytes) -> None:
        existing = self._existing_queues
        event = delivery_event(
            self.mode,
            method,
            properties,
            body,
            seq=self._seq + 1,
            vhost=self.vhost,
            prefilter=self._prefilter,
            preview_limit=self.settings.preview_limit,
            mask=self.settings.mask,
            existing_queues=self._queue_check if existing is not None else None,
        )
        if event is IGNORED:
            self._ignored_own += 1
        elif event is RULED_OUT:
            self._seq += 1  # numbered all the same, and counted (`_skipped`)
            self._skipped += 1
        else:
            assert not isinstance(event, str)
            self._seq += 1
            if self.mode == "firehose":
                self._firehose_seen(event)
            self._buffer.append(event)
        self._after_delivery(channel, method.delivery_tag)

    def _passive_declare(self, queue: str) -> bool:
        connection, control = self._connection, self._control
        if connection is None:
            return True  # cannot tell: do not call the message unroutable
        try:
            if control is None or not control.is_open:
                control = self._control = connection.channel()
            control.queue_declare(queue, passive=True)
            return True
        except pika.exceptions.ChannelClosedByBroker:
            return False

    def _firehose_seen(self, event: TapEvent) -> None:
        existing = self._existing_queues
        if existing is not None and event["queue"]:
            existing.add(event["queue"])  # a delivery proves the queue exists
        elif "message_id" in event["properties"]:
            self._observations.record(event)

    def _merge(self, batches: list[Batch]) -> None:
        """The consumer processes' batches, into this tap's stream in order of arrival:
        numbered here, so a viewer sees one sequence without holes."""
        firehose_mode = self.mode == "firehose"
        for events, ignored, skipped in batches:
            self._ignored_own += ignored
            # What the process ruled out takes sequence numbers too: any, as no event
            # carries them.
            self._seq += skipped
            self._skipped += skipped
            for event in events:
                self._seq += 1
                event["seq"] = self._seq
                if firehose_mode:
                    if self._existing_queues is not None:
                        correct_default_routes(event, self._queue_check)
                    self._firehose_seen(event)
            self._buffer.extend(events)
        if len(self._buffer) + self._skipped >= self.settings.batch_max_events:
            self._flush(force=True)

    def _set_consumers(self, consumers: dict[str, Any]) -> None:
        if consumers != self._consumers:
            with self._lock:
                self._consumers = consumers
            self._status_dirty = True

    def _after_delivery(self, channel: BlockingChannel, delivery_tag: int) -> None:
        self._unacked_tag = delivery_tag
        if delivery_tag - self._acked_tag >= self.settings.prefetch // 2:
            self._ack(channel)
        if len(self._buffer) + self._skipped >= self.settings.batch_max_events:
            self._flush(force=True)
        # Otherwise the serve loop flushes: process_data_events returns as soon as it has
        # dispatched what arrived, so a quiet tap's lone event leaves at once, while a busy
        # tap's whole dispatch round (up to `prefetch` deliveries) goes out as one batch.

    def _flush(self, *, force: bool = False) -> None:
        if not self._buffer and not self._skipped:
            return
        now = time.monotonic()
        if not force and now - self._last_flush < self._flush_gap:
            return
        batch = SharedEvents(self._buffer)
        batch.first_seq, batch.last_seq = self._flushed_seq + 1, self._seq
        batch.skipped = self._skipped
        self._buffer, self._skipped, self._flushed_seq = [], 0, self._seq
        self._last_flush = now
        busy = batch.received >= self.settings.busy_batch_events
        self._flush_gap = self.settings.batch_interval_s if busy else self.settings.quiet_gap_s
        with self._lock:
            self._received += batch.received
            self._ruled_out += batch.skipped
        self._status_dirty = False
        self._sink(batch, self.status())

    def _emit_status(self) -> None:
        self._status_dirty = False
        self._sink(SharedEvents(), self.status())

    @staticmethod
    def _close_quietly(connection: BlockingConnection) -> None:
        try:
            if connection.is_open:
                connection.close()
        except Exception:  # already broken: the broker drops exclusive queues anyway
            LOGGER.debug("closing a broken tap connection failed", exc_info=True)

    # --- the sync thread: what to bind, which queues exist -------------------------------

    def _sync_loop(self) -> None:
        while not self._stop.wait(self.settings.sync_interval_s):
            try:
                self._sync_once()
                if self._lease is not None:
                    firehose.heartbeat(self._lease)
            except Exception:
                LOGGER.exception("tap sync on %r failed", self.vhost)

    def _cluster_size(self) -> int:
        try:
            return max(len(self._client.running_nodes()), 1)
        except BrokerError:  # cannot tell (the API user may lack the monitoring tag)
            return 1

    def _sync_once(self) -> None:
        try:
            exchanges = self._client.exchanges(
                self.vhost, columns="name,type,arguments", disable_stats=True
            )
            if self.mode == "bindings":
                bindings = self._client.bindings(self.vhost)
                plan = plan_bindings(exchanges, bindings)
                with self._lock:
                    changed = plan.coverage != self._coverage
                    self._desired = plan.bindings
                    self._coverage = plan.coverage
                    self._sync_warning = None
            else:
                queues = self._client.queues(self.vhost, columns="name", disable_stats=True)
                coverage = firehose_coverage(
                    (str(item.get("name") or "") for item in exchanges),
                    tracing_was_on=bool(self._lease and self._lease.tracing_was_on),
                    cluster_nodes=self._cluster_size(),
                )
                vhost = self._client.vhost(self.vhost)
                if not vhost.tracing:
                    coverage["warnings"].append(
                        "Tracing is off on this vhost right now: the firehose shows nothing."
                    )
                with self._lock:
                    changed = coverage != self._coverage
                    self._coverage = coverage
                    self._existing_queues = {str(item.get("name") or "") for item in queues}
                    self._sync_warning = None
        except BrokerError as exc:
            with self._lock:
                changed = self._sync_warning is None
                self._sync_warning = (
                    f"Could not refresh the vhost's exchanges: {exc.message} "
                    "(coverage may be out of date)"
                )
        if changed:
            self._status_dirty = True
