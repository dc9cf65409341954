"""Reading a dead-letter queue without losing or reordering what it holds.

A classic or quorum queue cannot be browsed: a message is only seen by taking it. So the
read takes a *snapshot*: it counts the queue's ready messages once, takes at most that many
(and at most `limit`) with `basic.get` and manual acks, holding every one unacked, and then
gives them all back with one `basic.nack(multiple, requeue)`; if anything goes wrong in
between, closing the connection gives them back too. RabbitMQ puts requeued messages back
where they were. The cost, said on the page: the messages are marked `redelivered`, and
while the snapshot is read (milliseconds) a consumer of the queue does not get them.
Quorum queues count a requeue as a delivery attempt, so one with a delivery limit is not
read this way at all. Stream queues are read without taking anything, from their first
offset (`x-stream-offset`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions

from flows.broker import float_headers
from flows.broker.amqp import open_blocking_connection
from flows.broker.errors import BrokerError, BrokerNotFound
from flows.dead_letters.grouping import Group, Letter, death_count, group_letters, origin_of
from flows.runtime import runtime

float_headers.install()

LOGGER = logging.getLogger(__name__)

DEFAULT_READ_LIMIT = 2_000
STREAM_READ_TIMEOUT_S = 2.0

# Where a stream is read from (`x-stream-offset`): its first message, its last chunk (the
# newest messages the broker stored together), or the first chunk at or after a moment.
StreamStart = str | dt.datetime


def parse_stream_start(text: str) -> StreamStart:
    """`first` (also empty), `last`, or an ISO 8601 moment (UTC when no zone is given).

    Raises ValueError saying what is accepted. Pure.
    """
    word = text.strip().lower()
    if word in {"", "first"}:
        return "first"
    if word == "last":
        return "last"
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"read a stream from 'first', 'last' or a moment such as 2026-12-01T10:00, not {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def describe_start(start: StreamStart) -> str:
    if isinstance(start, dt.datetime):
        return f"from {start.isoformat(timespec='seconds')}"
    return "from its first offset" if start == "first" else "from its last chunk"


class CannotRead(Exception):
    """This queue cannot be read safely, or at all; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class QueueFacts:
    name: str
    type: str  # classic, quorum, stream
    ready: int
    consumers: int
    delivery_limit: int | None


@dataclass
class Snapshot:
    vhost: str
    queue: QueueFacts
    letters: list[Letter] = field(default_factory=list)
    how: str = ""

    @property
    def groups(self) -> list[Group]:
        return group_letters(self.letters)

    @property
    def without_x_death(self) -> int:
        return sum(1 for letter in self.letters if letter.origin is None)

    @property
    def partial(self) -> bool:
        return len(self.letters) < self.queue.ready


def queue_facts(vhost: str, queue: str) -> QueueFacts:
    """What the management API says of the queue (raises CannotRead when there is none)."""
    try:
        data = runtime().management_client.find_queue(vhost, queue)
    except BrokerNotFound:
        data = None
    if data is None:
        raise CannotRead(f"There is no queue {queue!r} in vhost {vhost!r}.")
    return QueueFacts(
        name=queue,
        type=str(data.get("type") or "classic"),
        ready=_int(data.get("messages_ready", data.get("messages"))),
        consumers=_int(data.get("consumers")),
        delivery_limit=_delivery_limit(data),
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _delivery_limit(data: Mapping[str, Any]) -> int | None:
    for source in (data.get("arguments"), data.get("effective_policy_definition")):
        if isinstance(source, Mapping):
            for key in ("x-delivery-limit", "delivery-limit"):
                if isinstance(source.get(key), int):
                    return int(source[key])
    return None


def letter_of(position: int, properties: Any, body: bytes) -> Letter:
    headers = getattr(properties, "headers", None) or {}
    return Letter(
        position=position,
        origin=origin_of(headers),
        deaths=death_count(headers),
        message_id=getattr(properties, "message_id", None),
        size=len(body),
    )


def read_dead_letters(
    vhost: str, queue: str, *, limit: int = DEFAULT_READ_LIMIT, start: StreamStart = "first"
) -> Snapshot:
    """A snapshot of the queue's messages, grouped; the queue is left as it was. A stream is
    read from `start` (see `parse_stream_start`), without consuming anything.

    Raises CannotRead (no such queue, a quorum queue with a delivery limit) or BrokerError.
    """
    facts = queue_facts(vhost, queue)
    if facts.type == "quorum" and facts.delivery_limit is not None:
        raise CannotRead(
            f"{queue!r} is a quorum queue with a delivery limit ({facts.delivery_limit}): "
            "reading it would count as a delivery attempt for every message, and could drop "
            "or dead-letter them. It is not read."
        )
    connection = open_blocking_connection(vhost=vhost, purpose=f"dead letters {queue}")
    try:
        if facts.type == "stream":
            return _read_stream(connection, vhost, facts, limit, start)
        return _read_by_requeue(connection, vhost, facts, limit)
    except pika.exceptions.ChannelClosedByBroker as exc:
        raise CannotRead(f"The broker refused to read {queue!r}: {exc.reply_text}") from exc
    except pika.exceptions.AMQPError as exc:
        raise BrokerError(f"The connection was lost while reading {queue!r}") from exc
    finally:
        if connection.is_open:
            connection.close()  # anything still unacked goes back to the queue


def _read_by_requeue(
    connection: pika.BlockingConnection, vhost: str, facts: QueueFacts, limit: int
) -> Snapshot:
    channel = connection.channel()
    # Counted now: what arrives while reading is not part of the snapshot.
    ready = channel.queue_declare(facts.name, passive=True).method.message_count
    facts = QueueFacts(facts.name, facts.type, ready, facts.consumers, facts.delivery_limit)
    letters: list[Letter] = []
    last_tag = None
    for position in range(min(ready, limit)):
        method, properties, body = channel.basic_get(facts.name, auto_ack=False)
        if method is None:  # a consumer took the rest meanwhile
            break
        last_tag = method.delivery_tag
        letters.append(letter_of(position, properties, body or b""))
    if last_tag is not None:
        channel.basic_nack(delivery_tag=last_tag, multiple=True, requeue=True)
    return Snapshot(
        vhost=vhost,
        queue=facts,
        letters=letters,
        how=(
            f"Read by taking {len(letters)} of {ready} messages without acknowledging them "
            "and giving them all back (requeued in place, now marked redelivered)."
        ),
    )


def _read_stream(
    connection: pika.BlockingConnection,
    vhost: str,
    facts: QueueFacts,
    limit: int,
    start: StreamStart = "first",
) -> Snapshot:
    channel = connection.channel()
    channel.basic_qos(prefetch_count=min(max(limit, 1), 1000))
    letters: list[Letter] = []
    # From the first offset the depth says how many there are; from elsewhere, read until
    # the stream has nothing more to give (or the limit).
    wanted = min(facts.ready, limit) if start == "first" else limit
    for method, properties, body in channel.consume(
        facts.name,
        arguments={"x-stream-offset": start},  # a datetime goes as an AMQP timestamp
        inactivity_timeout=STREAM_READ_TIMEOUT_S,
    ):
        if method is None or len(letters) >= wanted:
            break
        letters.append(letter_of(len(letters), properties, body or b""))
        # In a stream an ack is credit for more, not a removal.
        channel.basic_ack(method.delivery_tag or 0)
        if len(letters) >= wanted:
            break
    # No `channel.cancel()`: pika's would nack what is still prefetched, which a stream
    # refuses by closing the connection. Closing the connection (the caller's `finally`)
    # ends the consumer, and a stream loses nothing by it.
    return Snapshot(
        vhost=vhost,
        queue=facts,
        letters=letters,
        how=f"Read the stream {describe_start(start)}: {len(letters)} messages, nothing consumed.",
    )
