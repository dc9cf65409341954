"""Stream queues are browsed without consuming: from the first message, the last chunk, or a
moment (`x-stream-offset`), on the real broker."""

from __future__ import annotations

import datetime as dt
import time

import pika
import pytest

from flows.dead_letters.reading import parse_stream_start, read_dead_letters
from tests.support.tap_harness import amqp_channel
from tests.support.waiting import eventually


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("", "first"),
        ("first", "first"),
        (" LAST ", "last"),
        ("2026-12-01T10:00", dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)),
        (
            "2026-12-01T10:00:05+01:00",
            dt.datetime(2026, 12, 1, 10, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        ),
    ],
)
def test_where_a_stream_is_read_from(text, start):
    assert parse_stream_start(text) == start


@pytest.mark.parametrize("text", ["next", "yesterday", "12", "2026-13-01"])
def test_anything_else_is_refused_saying_what_is_taken(text):
    with pytest.raises(ValueError, match="'first', 'last' or a moment"):
        parse_stream_start(text)


def publish(vhost: str, ids: list[str]) -> None:
    with amqp_channel(vhost) as channel:
        channel.confirm_delivery()
        for message_id in ids:
            channel.basic_publish(
                "", "events.stream", b"{}", pika.BasicProperties(message_id=message_id)
            )


def test_a_stream_is_read_from_first_last_or_a_moment_and_nothing_is_consumed(scratch_vhost):
    with amqp_channel(scratch_vhost) as channel:
        channel.queue_declare("events.stream", durable=True, arguments={"x-queue-type": "stream"})
    publish(scratch_vhost, ["old-1", "old-2", "old-3"])
    # Chunks carry the moment they were written: a second later is a later chunk.
    time.sleep(1.5)
    moment = dt.datetime.now(dt.UTC)
    time.sleep(0.5)
    publish(scratch_vhost, ["new-1", "new-2"])

    def ids(start) -> list[str | None]:
        snapshot = read_dead_letters(scratch_vhost, "events.stream", start=start)
        return [letter.message_id for letter in snapshot.letters]

    # The depth the broker reports lags by its statistics interval.
    everything = eventually(
        lambda: (found := ids("first")) == ["old-1", "old-2", "old-3", "new-1", "new-2"] and found,
        what="all five from the first offset",
    )
    assert everything
    assert ids(moment) == ["new-1", "new-2"]
    # The last chunk: the newest messages the broker stored together (here, each publish
    # was confirmed before the next, so the last alone).
    last = ids("last")
    assert last and last[-1] == "new-2" and set(last) <= {"new-1", "new-2"}
    # Read three times, consumed never: all five are still there from the start.
    assert ids("first") == ["old-1", "old-2", "old-3", "new-1", "new-2"]
