"""One more consumer on a tap's queue, in a process of its own (`FLOWS_TAP_CONSUMERS` > 1).

One Python consumer takes about as many messages a second as one core allows (pika's frame
decoding and the making of each event are nearly all of it), and a busy vhost can outrun
it. With `FLOWS_TAP_CONSUMERS=N` the tap (`flows.tap.tap`) consumes its queue itself and
starts N-1 of these on the same queue (`flows.tap.consumer_pool`): the broker hands each
consumer its share, each turns its deliveries into events on its own core, and the tap
merges their batches into its own in order of arrival, numbering them (`seq`) as they come,
so a viewer sees one stream whose counts add up.

Run as `python -m flows.tap.consumer_process`, spoken to over its standard streams:

- stdin: one JSON line, the `Config` (the broker's URLs carry credentials: never argv),
  then a JSON line `{"prefilter": ..., "version": n}` each time the tap's prefilter
  changes (`flows.tap.selection.Prefilter.as_message`), answered `("prefilter", n)` once
  in force. End of file (the tap stops, or died): the
  child cancels its consumer, sends the events it made, acks them, and exits.
- stdout: frames, each a 4-byte big-endian length and a pickle of `(kind, payload)`:
  `("ready", None)` once it consumes, `("events", (events, ignored_own, skipped))` for
  each batch (`skipped`: ruled out by the prefilter), `("error", message)` before it
  exits for a reason the tap should show.

It needs no Django: it is started per tap, and its start-up is a gap in nothing (the tap
itself consumes meanwhile), but it should still be quick.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

import pika
import pika.exceptions

from flows.broker.amqp import connection_parameters
from flows.masking import Mask
from flows.tap.deliveries import IGNORED, RULED_OUT, delivery_event
from flows.tap.events import TapEvent
from flows.tap.modes import CaptureMode
from flows.tap.selection import Prefilter

_LENGTH = struct.Struct(">I")
# Bulk acks, as the tap's own consumer does (flows.tap.tap.ACK_INTERVAL_S).
ACK_INTERVAL_S = 0.1
# What one frame holds at most; a dispatch round is usually far less.
FRAME_MAX_EVENTS = 500
# After a read of fewer deliveries than this, let the next ones gather this long before
# reading again (as the tap's own consumer does, flows.tap.tap.GATHER_BELOW): a read of
# many frames costs far less than a wake-up per delivery. The first delivery after a quiet
# spell is read, and sent, at once.
GATHER_BELOW = 200
GATHER_S = 0.005


@dataclass(frozen=True)
class Config:
    urls: list[str]
    vhost: str
    queue: str
    mode: CaptureMode
    prefetch: int
    preview_limit: int
    mask: list[str] = field(default_factory=list)
    prefilter: list[dict[str, str]] | None = None  # Prefilter.as_message()
    prefilter_version: int = 0
    name: str = "tap consumer"  # the connection's name, seen in the management UI
    poll_s: float = 0.01

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


def write_frame(stream: IO[bytes], kind: str, payload: Any) -> None:
    data = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> tuple[str, Any] | None:
    """The next frame, or None at the end of the stream (the child exited)."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(head)
    data = stream.read(length)
    if len(data) < length:
        return None
    return pickle.loads(data)  # noqa: S301 - from a child process this tap started


class _Consumer:
    def __init__(self, config: Config, channel, out: IO[bytes]) -> None:
        self.config = config
        self.channel = channel
        self.out = out
        self.mask = Mask(config.mask)
        self.prefilter = Prefilter.from_message(config.prefilter)  # set by the stdin thread
        self.prefilter_version = self._said_version = config.prefilter_version
        self.cancelled = False
        self._events: list[TapEvent] = []
        self._ignored = 0
        self._skipped = 0
        self._last_tag = 0
        self._acked_tag = 0
        self._acked_at = 0.0

    def on_cancel(self, frame) -> None:  # the broker cancelled it: the queue is gone
        self.cancelled = True

    def on_message(self, channel, method, properties, body: bytes) -> None:
        self._last_tag = method.delivery_tag
        config = self.config
        event = delivery_event(
            config.mode,
            method,
            properties,
            body,
            seq=0,  # numbered by the tap, in order of arrival
            vhost=config.vhost,
            prefilter=self.prefilter,
            preview_limit=config.preview_limit,
            mask=self.mask,
            existing_queues=None,  # corrected by the tap, which knows the queues
        )
        if event is IGNORED:
            self._ignored += 1
        elif event is RULED_OUT:
            self._skipped += 1
        else:
            assert not isinstance(event, str)
            self._events.append(event)
            if len(self._events) >= FRAME_MAX_EVENTS:
                self.send()

    def send(self) -> None:
        """What it holds to the tap, then acked: a message is acked once the tap has it.
        Then the prefilter version in force, if new: every event after it is made so."""
        if self._events or self._ignored or self._skipped:
            write_frame(self.out, "events", (self._events, self._ignored, self._skipped))
            self._events, self._ignored, self._skipped = [], 0, 0
        version = self.prefilter_version
        if version != self._said_version:
            write_frame(self.out, "prefilter", version)
            self._said_version = version
        now = time.monotonic()
        due = now - self._acked_at >= ACK_INTERVAL_S
        if self._last_tag > self._acked_tag and (
            due or self._last_tag - self._acked_tag >= self.config.prefetch // 2
        ):
            self.channel.basic_ack(self._last_tag, multiple=True)
            self._acked_tag, self._acked_at = self._last_tag, now


def _watch_stdin(consumer: _Consumer, stop: threading.Event) -> None:
    for line in sys.stdin:  # ends at end of file: the tap closed it, or died
        update = json.loads(line)
        consumer.prefilter = Prefilter.from_message(update.get("prefilter"))
        consumer.prefilter_version = update.get("version", 0)  # said with the next frame
    stop.set()


def run(config: Config, out: IO[bytes]) -> int:
    stop = threading.Event()
    params = [
        connection_parameters(vhost=config.vhost, purpose=config.name, url=url)
        for url in config.urls
    ]
    try:
        connection = pika.BlockingConnection(params)
    except (pika.exceptions.AMQPError, OSError) as exc:
        write_frame(out, "error", f"could not connect: {exc!r}")
        return 1
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=config.prefetch)
        consumer = _Consumer(config, channel, out)
        threading.Thread(target=_watch_stdin, args=(consumer, stop), daemon=True).start()
        channel.add_on_cancel_callback(consumer.on_cancel)
        tag = channel.basic_consume(config.queue, consumer.on_message, auto_ack=False)
        write_frame(out, "ready", None)
        while not stop.is_set() and not consumer.cancelled:
            before = consumer._last_tag
            # Returns once it dispatched what arrived: each round's events leave together.
            connection.process_data_events(time_limit=config.poll_s)
            consumer.send()
            if 0 < consumer._last_tag - before < GATHER_BELOW:
                time.sleep(GATHER_S)
        if not consumer.cancelled:
            # Deliveries not dispatched yet go back to the queue (pika nacks them).
            channel.basic_cancel(tag)
        consumer.send()
        if consumer._last_tag > consumer._acked_tag:
            channel.basic_ack(consumer._last_tag, multiple=True)
        connection.close()
        return 0
    except BrokenPipeError:
        return 0  # the tap is gone: the queue goes with its last consumer
    except (pika.exceptions.AMQPError, OSError) as exc:
        with contextlib.suppress(OSError):
            write_frame(out, "error", f"lost its connection: {exc!r}")
        return 1


def main() -> int:
    config = Config(**json.loads(sys.stdin.readline()))
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames on the real stdout
    return run(config, out)


if __name__ == "__main__":
    sys.exit(main())
