"""Moving dead-lettered messages back where they came from, or on to an exchange.

One message at a time, on one channel in confirm mode:

1. `basic.get` the next message, with a manual ack;
2. publish it (same properties, headers and body) to its target, *mandatory*, and wait for
   the broker's confirm; a return (nothing routes it) or a nack stops the move, and the
   message is given back to the dead-letter queue where it was;
3. only after the confirm, ack the original.

So a crash at any point loses nothing: before the confirm the original is still unacked and
goes back to the queue with the connection; between the confirm and the ack the message is
in both places: at most one duplicate. The move takes at most the queue's depth when it
starts (a message that dies again at once comes back behind it and is not chased), and
messages that are not to be moved (another group, no `x-death` to say where from) are held
unacked until the end and then given back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions

from flows.broker import float_headers
from flows.broker.amqp import open_blocking_connection
from flows.broker.errors import BrokerError
from flows.dead_letters.grouping import Origin, Selection, origin_of
from flows.publishing.policy import refusal_outside_allow_list
from flows.topology.records import exchange_label

float_headers.install()

LOGGER = logging.getLogger(__name__)

# Said wherever a move is offered or run.
GUARANTEE = (
    "Each message is published to its target with publisher confirms and acknowledged in the "
    "dead-letter queue only after the broker confirmed it: a crash or a cancel loses no "
    "message, and duplicates at most one (the one in flight)."
)


@dataclass(frozen=True)
class MoveTarget:
    """Where messages go: back to their origin (`exchange` None), or to exchange + key."""

    exchange: str | None = None
    routing_key: str = ""

    @property
    def to_origin(self) -> bool:
        return self.exchange is None

    def resolve(self, origin: Origin | None) -> tuple[str, str] | None:
        """(exchange, routing key) for a message of this origin; None: it has none."""
        if self.exchange is not None:
            return self.exchange, self.routing_key
        if origin is None:
            return None
        return origin.exchange, origin.routing_key

    def describe(self) -> str:
        if self.exchange is None:
            return "back to where they came from"
        return f"to {exchange_label(self.exchange)} with routing key {self.routing_key!r}"


@dataclass
class MoveProgress:
    """Written by the moving thread, read by anyone."""

    total: int = 0  # messages the move looks at: the queue's depth when it started
    moved: int = 0
    skipped: int = 0  # not selected, or without an origin: given back
    state: str = "starting"  # starting, running, done, cancelled, error
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in {"done", "cancelled", "error"}

    @property
    def percent(self) -> int:
        seen = self.moved + self.skipped
        return int(100 * seen / self.total) if self.total else 100

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "moved": self.moved,
            "skipped": self.skipped,
            "state": self.state,
            "error": self.error,
        }


def check_target(target: MoveTarget, allowed_patterns: list[str]) -> str | None:
    """Why a fixed target is refused (the publish allow-list), or None."""
    if target.exchange is None:
        return None
    return refusal_outside_allow_list(target.exchange, allowed_patterns)


@dataclass(frozen=True)
class _Plan:
    queue: str
    target: MoveTarget
    selection: Selection
    allowed_patterns: list[str]
    limit: int | None
    rate: float | None


def move_messages(
    *,
    vhost: str,
    queue: str,
    target: MoveTarget,
    selection: Selection | None = None,
    allowed_patterns: list[str] | None = None,
    cancel: threading.Event | None = None,
    progress: MoveProgress | None = None,
    limit: int | None = None,
    rate: float | None = None,
    on_moved: Callable[[MoveProgress], None] | None = None,
) -> MoveProgress:
    """Move the selected messages of `queue`, one at a time; returns the progress at the end.

    Never raises for the broker: a lost connection or a refusal ends the move in state
    `error` with the reason, every unmoved message back in the queue.
    """
    progress = progress or MoveProgress()
    plan = _Plan(queue, target, selection or Selection(), allowed_patterns or [], limit, rate)
    try:
        connection = open_blocking_connection(vhost=vhost, purpose=f"move dead letters {queue}")
    except BrokerError as exc:
        progress.state, progress.error = "error", exc.message
        return progress
    try:
        _move(connection, plan, cancel or threading.Event(), progress, on_moved)
    except pika.exceptions.ChannelClosedByBroker as exc:
        progress.state = "error"
        progress.error = (
            f"The broker closed the channel: {exc.reply_text} ({exc.reply_code}); the message "
            "in flight is back in the dead-letter queue."
        )
    except (pika.exceptions.AMQPError, OSError) as exc:
        LOGGER.warning("moving dead letters of %r: connection lost: %r", queue, exc)
        progress.state = "error"
        progress.error = (
            "The connection to the broker was lost: the messages not yet moved are back in the "
            "dead-letter queue (the one in flight may also have reached its target)."
        )
    finally:
        if connection.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError):
                connection.close()
    return progress


def _move(
    connection: pika.BlockingConnection,
    plan: _Plan,
    cancel: threading.Event,
    progress: MoveProgress,
    on_moved: Callable[[MoveProgress], None] | None,
) -> None:
    channel = connection.channel()
    channel.confirm_delivery()
    depth = channel.queue_declare(plan.queue, passive=True).method.message_count
    progress.total = min(depth, plan.limit) if plan.limit is not None else depth
    progress.state = "running"
    held: list[int] = []  # delivery tags of messages given back at the end
    interval = 1.0 / plan.rate if plan.rate else 0.0
    next_at = time.monotonic()
    try:
        for _ in range(progress.total):
            if cancel.is_set():
                progress.state = "cancelled"
                return
            method, properties, body = channel.basic_get(plan.queue, auto_ack=False)
            if method is None or properties is None or body is None:  # someone took the rest
                break
            tag = method.delivery_tag or 0
            origin = origin_of(properties.headers)
            where = plan.target.resolve(origin) if plan.selection.matches(origin) else None
            if where is None:
                held.append(tag)
                progress.skipped += 1
                continue
            error = _publish(channel, where, properties, body, plan.allowed_patterns)
            if error is not None:
                channel.basic_nack(tag, requeue=True)
                progress.state, progress.error = "error", error
                return
            channel.basic_ack(tag)
            progress.moved += 1
            if on_moved is not None:
                on_moved(progress)
            if interval:
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))
        progress.state = "done"
    finally:
        if held and channel.is_open:
            # Every other delivery is acked or given back already: this returns the held ones.
            channel.basic_nack(held[-1], multiple=True, requeue=True)


def _publish(
    channel: Any,
    where: tuple[str, str],
    properties: pika.BasicProperties,
    body: bytes,
    allowed_patterns: list[str],
) -> str | None:
    """Publish one message to its target and wait for the confirm; why not, or None."""
    exchange, routing_key = where
    refusal = refusal_outside_allow_list(exchange, allowed_patterns)
    if refusal:
        return refusal
    try:
        channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)
    except pika.exceptions.UnroutableError:
        return (
            f"Stopped: {exchange_label(exchange)} with routing key {routing_key!r} routes the "
            "message to no queue (the broker returned it). It is still in the dead-letter queue."
        )
    except pika.exceptions.NackError:
        return (
            "Stopped: the broker refused the message at its target (nack). It is still in the "
            "dead-letter queue."
        )
    return None


# --- moves as background jobs of the web process -------------------------------------------------


@dataclass
class MoveJob:
    vhost: str
    queue: str
    target: MoveTarget
    selection: Selection
    user_id: int | None
    record_id: int | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    progress: MoveProgress = field(default_factory=MoveProgress)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def cancel(self) -> None:
        self.cancel_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        if self.thread is not None:
            self.thread.join(timeout)
        return self.progress.finished


class MessageMoves:
    """The moves the web process runs, each on a thread of its own; the process's one
    instance is `flows.runtime.runtime().message_moves`, stopped (cancelled) with it."""

    def __init__(self) -> None:
        self._jobs: dict[str, MoveJob] = {}
        self._lock = threading.Lock()

    def start(self, job: MoveJob, *, allowed_patterns: list[str]) -> MoveJob:
        def run() -> None:
            from django.db import connection

            try:
                move_messages(
                    vhost=job.vhost,
                    queue=job.queue,
                    target=job.target,
                    selection=job.selection,
                    allowed_patterns=allowed_patterns,
                    cancel=job.cancel_event,
                    progress=job.progress,
                )
                record_finish(job.record_id, job.progress)
            except Exception:
                LOGGER.exception("the move of %r failed", job.queue)
                job.progress.state, job.progress.error = "error", "The move failed (a bug)."
                record_finish(job.record_id, job.progress)
            finally:
                connection.close()

        job.thread = threading.Thread(
            target=run, name=f"move dead letters {job.queue}", daemon=True
        )
        with self._lock:
            self._jobs[job.id] = job
        job.thread.start()
        return job

    def find(self, job_id: str) -> MoveJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def stop(self, timeout_s: float) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        deadline = time.monotonic() + timeout_s
        for job in jobs:
            job.wait(max(0.0, deadline - time.monotonic()))


# --- the record of each move --------------------------------------------------------------------


def record_start(
    *, user: Any, vhost: str, queue: str, target: MoveTarget, selection: Selection
) -> int:
    """The move's row, and its audit entry: one per move, as for a repeat run (the row
    then counts what moved). `user` is the account, or a string naming a process."""
    from flows import audit
    from flows.models import MessageMove

    audit.record(
        user,
        audit.MOVE_MESSAGES,
        vhost=vhost,
        target=queue,
        details={"to": target.describe(), "selection": selection.describe()},
    )
    record = MessageMove.objects.create(
        user_id=None if isinstance(user, str) else getattr(user, "pk", None),
        vhost=vhost,
        source_queue=queue,
        target=target.describe(),
        selection=selection.describe(),
        state="running",
    )
    return record.pk


def record_finish(record_id: int | None, progress: MoveProgress) -> None:
    if record_id is None:
        return
    from django.utils import timezone

    from flows.models import MessageMove

    MessageMove.objects.filter(pk=record_id).update(
        state=progress.state,
        total=progress.total,
        moved=progress.moved,
        skipped=progress.skipped,
        error=progress.error or "",
        finished_at=timezone.now(),
    )
