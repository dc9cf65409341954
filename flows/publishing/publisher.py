"""The long-lived publisher: one AMQP connection per vhost, owned by one thread.

pika connections are not thread-safe, so each vhost's connection lives in a dedicated
thread. Request threads hand it work through a queue and wait for the answer; the
thread also services heartbeats while idle, notices a broker that went away, and
reconnects on the next publish.

Two channels per connection:
- the *single* channel is in publisher-confirm mode through pika's documented
  `BlockingChannel.confirm_delivery()`: each publish waits for its ack, nack or
  `basic.return` (mandatory), which is exactly the answer a person wants to see;
- the *bulk* channel, for repeat runs, keeps up to `WINDOW` messages unconfirmed at once.
  `BlockingChannel` only offers synchronous confirms (one round trip per message, a few
  thousand per second), so this channel turns confirms on through its underlying
  asynchronous channel (`channel._impl`), whose ack/nack/return callbacks run inside
  this thread's `process_data_events`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
import pika.spec

from flows.broker import float_headers
from flows.broker.amqp import amqp_where, connection_name, open_blocking_connection
from flows.broker.errors import BrokerAuthFailed, BrokerError, BrokerRefused
from flows.publishing.fields import PublishRequest
from flows.publishing.runs import SYNC_INTERVAL_S, RunStatus, SharedRuns
from flows.shared_store import SharedStoreDown, reaching_store

float_headers.install()

LOGGER = logging.getLogger(__name__)

# Unconfirmed messages a repeat run may have in flight on the bulk channel.
WINDOW = 2000
# Messages published between two reads of the socket (acks, returns, job queue, cancel).
SLICE = 250
# How long a request waits for the publisher thread before giving up.
PUBLISH_TIMEOUT_S = 15.0
# After a cancel or the last publish, how long a run waits for its outstanding confirms.
DRAIN_TIMEOUT_S = 5.0
IDLE_POLL_S = 1.0
# A resource alarm (memory, disk) makes RabbitMQ stop reading from publishing connections
# (`connection.blocked`): pika then gives up on the connection after this long, so a publish
# gets a clear answer well within PUBLISH_TIMEOUT_S, and the thread is free again, instead
# of waiting the factory's default minute.
BLOCKED_TIMEOUT_S = 5.0


def publisher_connection_name(vhost: str) -> str:
    """The `connection_name` the management API shows for a vhost's publisher."""
    return connection_name(f"publisher {vhost}")


class PublishFailed(Exception):
    """The message could not be published; `field` names the field to blame, if any."""

    def __init__(self, message: str, *, field: str | None = None, kind: str = "broker") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.kind = kind


@dataclass(frozen=True)
class PublishOutcome:
    """What the broker answered for one message."""

    confirmed: bool  # basic.ack (False: basic.nack)
    returned: bool  # basic.return: mandatory and routed to no queue
    reply_code: int | None = None
    reply_text: str | None = None
    elapsed_ms: float = 0.0

    @property
    def status(self) -> str:
        if not self.confirmed:
            return "nacked"
        return "unroutable" if self.returned else "routed"


class RepeatRun:
    """A repeat run's progress, written by its publisher thread, which alone reads it.

    Everyone else reads the `RunStatus` the thread shares (`flows.publishing.runs`): a
    request about the run may reach another web worker than the one running it.
    """

    def __init__(
        self,
        request: PublishRequest,
        *,
        shared: SharedRuns,
        owner_id: int | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.request = request
        self.owner_id = owner_id
        self.shared = shared  # where its status goes: its `Publishers`' one
        self.total = request.repeat
        self.rate = request.rate
        self.published = 0
        self.confirmed = 0
        self.nacked = 0
        self.returned = 0
        self.state = "waiting"  # waiting, running, done, cancelled, error
        self.error: str | None = None
        self.created_at = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._cancel = threading.Event()
        self._finished = threading.Event()

    def cancel(self) -> None:
        """Stop the run from this process (a stop); a request asks through `SharedRuns`."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    @property
    def elapsed_s(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.monotonic()) - self.started_at

    @property
    def achieved_rate(self) -> float:
        """Confirmed messages per second so far."""
        elapsed = self.elapsed_s
        return self.confirmed / elapsed if elapsed > 0 else 0.0

    def status(self) -> RunStatus:
        return RunStatus(
            id=self.id,
            owner_id=self.owner_id,
            vhost=self.request.vhost,
            state=self.state,
            total=self.total,
            published=self.published,
            confirmed=self.confirmed,
            nacked=self.nacked,
            returned=self.returned,
            rate=self.rate,
            achieved_rate=self.achieved_rate,
            elapsed_s=self.elapsed_s,
            error=self.error,
            written_at=time.time(),
        )

    def snapshot(self) -> dict[str, Any]:
        return self.status().to_json()

    def share(self) -> None:
        """Write the status where every worker reads it; a cache outage costs only that."""
        try:
            self.shared.write([self.status()])
        except Exception:
            LOGGER.warning("could not share the status of repeat run %s", self.id, exc_info=True)

    def _finish(self, state: str, error: str | None = None) -> None:
        # Finished runs are kept a while for their progress page: without the body.
        self.request = dataclasses.replace(self.request, body=b"", body_display="")
        self.state = state
        self.error = error
        self.finished_at = time.monotonic()
        self.share()
        self._finished.set()


def build_properties(request: PublishRequest, **overrides: Any) -> pika.BasicProperties:
    return pika.BasicProperties(
        headers=request.headers or None, **{**request.properties, **overrides}
    )


def _channel_error(exc: pika.exceptions.ChannelClosedByBroker) -> str:
    text = exc.reply_text or ""
    return f"{text} (the broker closed the channel: {exc.reply_code})"


def _field_for_channel_error(exc: pika.exceptions.ChannelClosedByBroker) -> str | None:
    text = (exc.reply_text or "").lower()
    if exc.reply_code == 404 or "exchange" in text:
        return "exchange"
    if "user_id" in text:
        return "user_id"
    return None


class VhostPublisher(threading.Thread):
    """The thread that owns one vhost's publisher connection."""

    def __init__(self, vhost: str) -> None:
        super().__init__(name=f"publisher {vhost}", daemon=True)
        self.vhost = vhost
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue()
        self._runs: deque[RepeatRun] = deque()
        self._stopping = threading.Event()
        self._connection: pika.BlockingConnection | None = None
        self._single: Any = None
        self._bulk: Any = None
        # Bulk-channel confirm bookkeeping for the run in progress.
        self._bulk_next_tag = 1
        self._bulk_pending: deque[int] = deque()
        self._bulk_acked_singly: set[int] = set()
        self._bulk_run: RepeatRun | None = None
        self._blocked_reason: str | None = None  # the broker's, while it blocks us
        self._next_sync = 0.0  # time.monotonic() of the next sharing of the runs' progress

    # --- the API other threads call ---------------------------------------------------------

    def publish(
        self, request: PublishRequest, *, timeout: float = PUBLISH_TIMEOUT_S
    ) -> PublishOutcome:
        future: Future[PublishOutcome] = Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(self._publish_one(request))
            except PublishFailed as exc:  # handed to the waiting request thread
                future.set_exception(exc)
            except Exception as exc:
                # Unexpected (a pika bug, an encoding corner): say so plainly, start afresh.
                LOGGER.exception("publishing to vhost %r failed", self.vhost)
                self._drop_connection()
                future.set_exception(
                    PublishFailed(
                        f"Publishing failed unexpectedly ({type(exc).__name__}); "
                        "the message was not confirmed.",
                        kind="internal",
                    )
                )

        self._jobs.put(job)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            future.cancel()
            raise PublishFailed(
                f"The publisher for vhost {self.vhost!r} did not answer within {timeout:.0f} s; "
                "the message may or may not have been published.",
                kind="timeout",
            ) from None

    def start_repeat(self, run: RepeatRun) -> RepeatRun:
        self._jobs.put(lambda: self._runs.append(run))
        return run

    def stop(self) -> None:
        self._stopping.set()
        self._jobs.put(lambda: None)

    # --- the thread -------------------------------------------------------------------------

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._runs:
                    self._drain_jobs()
                    self._sync_runs()
                    self._drop_cancelled_waiting_runs()
                    if self._runs:
                        self._step_repeat(self._runs[0])
                else:
                    try:
                        job = self._jobs.get(timeout=IDLE_POLL_S)
                    except queue.Empty:
                        self._idle()
                        continue
                    job()
            except Exception:  # never let the thread die: the next job starts afresh
                LOGGER.exception("publisher thread for vhost %r failed", self.vhost)
                self._drop_connection()
        for run in self._runs:
            run._finish("cancelled", "The publisher stopped.")
        self._drop_connection()

    def _sync_runs(self) -> None:
        """Every SYNC_INTERVAL_S: share the runs' progress, and take the cancel requests
        made through any worker (`flows.publishing.runs`). The waiting runs are written
        too: a run queued behind a long one must not look lost."""
        now = time.monotonic()
        if now < self._next_sync:
            return
        self._next_sync = now + SYNC_INTERVAL_S
        runs = list(self._runs)
        shared = runs[0].shared  # the process's one, given by `Publishers`
        try:
            shared.write(run.status() for run in runs)
            cancelled = shared.cancel_requested(run.id for run in runs)
        except Exception:  # the cache is down: the runs go on, unseen until it is back
            LOGGER.warning("could not share the repeat runs of vhost %r", self.vhost, exc_info=True)
            return
        for run in runs:
            if run.id in cancelled:
                run.cancel()

    def _drop_cancelled_waiting_runs(self) -> None:
        """A run cancelled while queued behind another ends at once, having sent nothing."""
        for run in [r for r in self._runs if r.state == "waiting" and r.cancel_requested]:
            self._runs.remove(run)
            run._finish("cancelled")

    def _drain_jobs(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            job()

    def _idle(self) -> None:
        """Service heartbeats, and learn early that the broker closed the connection."""
        if self._connection is None:
            return
        try:
            self._connection.process_data_events(0)
        except (pika.exceptions.AMQPError, OSError) as exc:
            LOGGER.info("publisher connection for vhost %r lost: %r", self.vhost, exc)
            self._drop_connection()

    # --- connection and channels ------------------------------------------------------------

    def _ensure_connection(self) -> pika.BlockingConnection:
        if self._connection is not None:
            try:
                # Reads a connection.close the broker may have sent meanwhile.
                self._connection.process_data_events(0)
            except (pika.exceptions.AMQPError, OSError):
                self._drop_connection()
        if self._connection is None or not self._connection.is_open:
            self._drop_connection()
            try:
                self._connection = open_blocking_connection(
                    vhost=self.vhost,
                    purpose=f"publisher {self.vhost}",
                    blocked_connection_timeout=BLOCKED_TIMEOUT_S,
                )
            except BrokerRefused as exc:
                # No such vhost, or no permission on it: the broker's answer, not an outage.
                raise PublishFailed(exc.message, field="vhost", kind="refused") from exc
            except BrokerAuthFailed as exc:
                raise PublishFailed(exc.message, kind="refused") from exc
            except BrokerError as exc:
                raise PublishFailed(exc.message, kind="unreachable") from exc
            self._blocked_reason = None
            # On the underlying asynchronous connection (as the bulk channel's confirms): the
            # BlockingConnection would only run these callbacks in `process_data_events`,
            # never while a publish waits for its confirm, which is when a block arrives.
            impl: pika.connection.Connection = self._connection._impl  # type: ignore[attr-defined]
            impl.add_on_connection_blocked_callback(self._on_blocked)
            impl.add_on_connection_unblocked_callback(self._on_unblocked)
        return self._connection

    def _on_blocked(self, _connection: Any, frame: Any) -> None:
        self._blocked_reason = getattr(frame.method, "reason", None) or "a resource alarm"

    def _on_unblocked(self, _connection: Any, _frame: Any) -> None:
        self._blocked_reason = None

    def _single_channel(self) -> Any:
        connection = self._ensure_connection()
        if self._single is None or not self._single.is_open:
            self._single = connection.channel()
            self._single.confirm_delivery()
        return self._single

    def _bulk_channel(self) -> Any:
        connection = self._ensure_connection()
        if self._bulk is None or not self._bulk.is_open:
            channel = connection.channel()
            ready: list[bool] = []
            # See the module docstring: asynchronous confirms. pika's stubs leave out the
            # private `_impl` (the asynchronous channel every BlockingChannel wraps).
            impl: pika.channel.Channel = channel._impl  # type: ignore[attr-defined]
            impl.confirm_delivery(
                ack_nack_callback=self._on_bulk_confirm, callback=lambda _frame: ready.append(True)
            )
            impl.add_on_return_callback(self._on_bulk_return)
            deadline = time.monotonic() + 5
            while not ready and time.monotonic() < deadline:
                connection.process_data_events(0.05)
            if not ready:
                raise PublishFailed("The broker did not turn on publisher confirms.")
            self._bulk = channel
            self._bulk_next_tag = 1
            self._bulk_pending.clear()
            self._bulk_acked_singly.clear()
        return self._bulk

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._single = None
        self._bulk = None
        if connection is not None and connection.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                connection.close()

    def _lost(self, exc: BaseException) -> PublishFailed:
        return PublishFailed(
            f"{self._lost_connection(exc)}: the message was not confirmed. "
            "The next publish reconnects.",
            kind="connection",
        )

    def _lost_connection(self, exc: BaseException) -> str:
        """Drop the connection; say how it was lost."""
        self._drop_connection()
        if isinstance(exc, pika.exceptions.ConnectionBlockedTimeout):
            reason = self._blocked_reason or "a resource alarm"
            return (
                f"RabbitMQ at {amqp_where()} is not accepting messages ({reason}: a memory "
                f"or disk alarm is on) and stayed blocked for {BLOCKED_TIMEOUT_S:.0f} s"
            )
        detail = ""
        if isinstance(exc, pika.exceptions.ConnectionClosed) and exc.reply_text:
            detail = f" ({exc.reply_text})"
        return f"The connection to RabbitMQ at {amqp_where()} was lost{detail}"

    # --- one message ------------------------------------------------------------------------

    def _publish_one(self, request: PublishRequest) -> PublishOutcome:
        channel = self._single_channel()
        started = time.perf_counter()
        returned, confirmed = False, True
        reply_code: int | None = None
        reply_text: str | None = None
        try:
            channel.basic_publish(
                exchange=request.exchange,
                routing_key=request.routing_key,
                body=request.body,
                properties=build_properties(request),
                mandatory=request.mandatory,
            )
        except pika.exceptions.UnroutableError as exc:
            returned = True
            if exc.messages:
                reply_code = exc.messages[0].method.reply_code
                reply_text = exc.messages[0].method.reply_text
        except pika.exceptions.NackError as exc:
            confirmed = False
            if exc.messages:
                returned = True
                reply_code = exc.messages[0].method.reply_code
                reply_text = exc.messages[0].method.reply_text
        except pika.exceptions.ChannelClosedByBroker as exc:
            self._single = None  # the next publish opens a fresh channel
            raise PublishFailed(
                _channel_error(exc), field=_field_for_channel_error(exc), kind="channel"
            ) from exc
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.ConnectionClosed) as exc:
            raise self._lost(exc) from exc
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise self._lost(exc) from exc
        return PublishOutcome(
            confirmed=confirmed,
            returned=returned,
            reply_code=reply_code,
            reply_text=reply_text,
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )

    # --- repeat runs ------------------------------------------------------------------------

    def _on_bulk_confirm(self, frame: Any) -> None:
        method = frame.method
        ack = isinstance(method, pika.spec.Basic.Ack)
        run = self._bulk_run

        def count() -> None:
            if run is not None:
                if ack:
                    run.confirmed += 1
                else:
                    run.nacked += 1

        if method.multiple:
            while self._bulk_pending and self._bulk_pending[0] <= method.delivery_tag:
                tag = self._bulk_pending.popleft()
                if tag in self._bulk_acked_singly:
                    self._bulk_acked_singly.discard(tag)
                else:
                    count()
        else:
            self._bulk_acked_singly.add(method.delivery_tag)
            count()
            while self._bulk_pending and self._bulk_pending[0] in self._bulk_acked_singly:
                self._bulk_acked_singly.discard(self._bulk_pending.popleft())

    def _on_bulk_return(self, _channel: Any, _method: Any, _properties: Any, _body: bytes) -> None:
        if self._bulk_run is not None:
            self._bulk_run.returned += 1

    def _outstanding(self) -> int:
        return len(self._bulk_pending) - len(self._bulk_acked_singly)

    def _step_repeat(self, run: RepeatRun) -> None:
        """Publish the next slice of a run, read acks, and finish it when it is done."""
        try:
            if run.state == "waiting":
                self._bulk_channel()
                self._bulk_run = run
                run.state = "running"
                run.started_at = time.monotonic()
                run.share()  # a change of state is shared at once, progress every sync
            channel, connection = self._bulk, self._connection
            if channel is None or connection is None or not channel.is_open:
                # Never reopen mid-run: the messages in flight are lost, the run says so.
                reason = getattr(channel, "_closing_reason", None)
                text = getattr(reason, "reply_text", "") or "the channel closed"
                self._end_run_with_error(run, f"Publishing stopped: {text}")
                return
            if run.cancel_requested or run.published >= run.total:
                self._finish_run(run, connection, "cancelled" if run.cancel_requested else "done")
                return
            due = run.total
            if run.rate is not None:
                assert run.started_at is not None
                elapsed = time.monotonic() - run.started_at
                due = min(run.total, int(elapsed * run.rate) + 1)
            batch = min(due - run.published, WINDOW - self._outstanding(), SLICE)
            if batch > 0:
                self._publish_batch(run, channel._impl, batch)
                connection.process_data_events(0)
            elif run.rate is not None and due <= run.published:
                # Ahead of the rate: wait for the next message's turn (or a job).
                assert run.started_at is not None
                next_due = run.started_at + (run.published / run.rate)
                connection.process_data_events(min(max(next_due - time.monotonic(), 0), 0.05))
            else:
                connection.process_data_events(0.005)  # the window is full: wait for acks
        except PublishFailed as exc:
            self._end_run_with_error(run, exc.message)
        except pika.exceptions.ChannelClosedByBroker as exc:
            self._end_run_with_error(run, f"Publishing stopped: {_channel_error(exc)}")
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._end_run_with_error(run, f"{self._lost_connection(exc)}.")

    def _publish_batch(self, run: RepeatRun, impl: Any, count: int) -> None:
        request = run.request
        shared = None if request.message_id_generated else build_properties(request)
        for _ in range(count):
            properties = shared or build_properties(
                request, message_id=f"{request.message_id}.{run.published + 1}"
            )
            impl.basic_publish(
                exchange=request.exchange,
                routing_key=request.routing_key,
                body=request.body,
                properties=properties,
                mandatory=request.mandatory,
            )
            self._bulk_pending.append(self._bulk_next_tag)
            self._bulk_next_tag += 1
            run.published += 1

    def _finish_run(self, run: RepeatRun, connection: pika.BlockingConnection, state: str) -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while self._outstanding() > 0 and time.monotonic() < deadline:
            connection.process_data_events(0.02)
        error = None
        if self._outstanding() > 0:
            error = f"{self._outstanding()} messages were not confirmed within {DRAIN_TIMEOUT_S} s"
            self._bulk = None  # start the next run on a fresh channel
        self._close_run(run, state, error)

    def _end_run_with_error(self, run: RepeatRun, message: str) -> None:
        """End a run that cannot go on. Its messages in flight are never sent again (a run
        does not resume on a new connection: that could publish a message twice), so the
        error says how many the broker did not confirm, and that they may have arrived."""
        self._bulk = None
        unconfirmed = self._outstanding()
        if unconfirmed:
            message = (
                f"{message} {unconfirmed} of the {run.published} messages published were not "
                "confirmed: each may or may not have reached its queues, and none is sent again."
            )
        self._close_run(run, "error", message)

    def _close_run(self, run: RepeatRun, state: str, error: str | None) -> None:
        if self._runs and self._runs[0] is run:
            self._runs.popleft()
        self._bulk_run = None
        self._bulk_pending.clear()
        self._bulk_acked_singly.clear()
        if self._bulk is not None and not self._bulk.is_open:
            self._bulk = None
        run._finish(state, error)


# --- every vhost's publisher --------------------------------------------------------------------


class Publishers:
    """This process's publisher threads, one per vhost, and the repeat runs handed to them.

    A run's status and its cancel go through `SharedRuns`, so any web worker can answer
    for a run another one publishes. The process's one instance is
    `flows.runtime.runtime().publishers`.
    """

    def __init__(self, shared: SharedRuns | None = None) -> None:
        self.shared = shared if shared is not None else SharedRuns()
        self._publishers: dict[str, VhostPublisher] = {}
        self._runs: dict[str, RepeatRun] = {}  # this process's runs not yet finished
        self._lock = threading.Lock()

    def for_vhost(self, vhost: str) -> VhostPublisher:
        """The vhost's publisher thread, started on first use (and again if it ever died)."""
        with self._lock:
            publisher = self._publishers.get(vhost)
            if publisher is None or not publisher.is_alive():
                publisher = VhostPublisher(vhost)
                publisher.start()
                self._publishers[vhost] = publisher
            return publisher

    def publish(
        self, request: PublishRequest, *, timeout: float = PUBLISH_TIMEOUT_S
    ) -> PublishOutcome:
        return self.for_vhost(request.vhost).publish(request, timeout=timeout)

    def start_repeat(self, request: PublishRequest, *, owner_id: int | None = None) -> RepeatRun:
        """Start a run; its status is shared before this returns, for the next request."""
        run = RepeatRun(request, shared=self.shared, owner_id=owner_id)
        try:
            with reaching_store("the repeat run was not started"):
                self.shared.write([run.status()])
        except SharedStoreDown as exc:  # unseen, it could be neither watched nor cancelled
            raise PublishFailed(exc.message, kind="unavailable") from exc
        with self._lock:
            for key in [key for key, kept in self._runs.items() if kept.finished]:
                del self._runs[key]
            self._runs[run.id] = run
        self.for_vhost(request.vhost).start_repeat(run)
        return run

    def find_run(self, run_id: str) -> RunStatus | None:
        """A run's last shared status, whichever process publishes it."""
        return self.shared.read(run_id)

    def cancel_run(self, run_id: str, *, wait_s: float = 2.0) -> RunStatus | None:
        """Ask the run's publisher thread to stop it; its status once stopped (or after
        `wait_s`, still stopping)."""
        self.shared.request_cancel(run_id)
        return self.shared.wait_finished(run_id, wait_s)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel the repeat runs, stop every publisher thread and close its connection."""
        with self._lock:
            publishers = list(self._publishers.values())
            self._publishers.clear()
            unfinished = [run for run in self._runs.values() if not run.finished]
        for run in unfinished:
            run.cancel()
        for publisher in publishers:
            publisher.stop()
        for publisher in publishers:
            publisher.join(timeout)
