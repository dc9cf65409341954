"""The live websocket: one frame of escaped HTML fragments per tap batch, filters first.

`tap.batch` messages of events made by the tap's own builders are sent to the vhost's tap
group, as the tap does;
the real tap runs too (joining starts it), and the end-to-end tests publish on the real
broker and wait for the row.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from urllib.parse import urlencode

from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser

from flows.tap.events import TapEvent
from flows.tap.groups import selection_group
from flows.websockets.close_codes import CLOSE_BAD_REQUEST, CLOSE_NOT_SIGNED_IN
from flows.websockets.live import LiveConsumer
from tests.support.communicators import connect, frames_until, run_with_tap
from tests.support.tap_events import delivered, published, published_via_bindings
from tests.support.tap_harness import amqp_channel, declare_bound_queue

ROW = re.compile(r'<div class="live-row[^"]*"[^>]*data-seq="(\d+)"')


def counter(html: str, name: str) -> int:
    match = re.search(rf'data-counter="{name}">(\d+)<', html)
    assert match, f"no {name} counter in {html[:300]}"
    return int(match.group(1))


async def send_batch(
    vhost: str, events: list[TapEvent], run: str = "test-run", params: dict | None = None
) -> None:
    """A batch as a tap with nothing chosen for it would send to the live page's group for
    `params` (its query): the socket filters and samples it itself."""
    selection = LiveConsumer().parse_query({"vhost": vhost, **(params or {})}).selection
    await get_channel_layer().group_send(
        selection_group(vhost, selection.key),
        {
            "type": "tap.batch",
            "vhost": vhost,
            "run": run,
            "events": events,
            "status": {
                "mode": "firehose",
                "state": "running",
                "counts": {"received": len(events), "overflow_dropped": 0},
            },
        },
    )


def test_an_anonymous_socket_is_closed_with_a_reason(transactional_db, broker_vhost):
    async def run():
        communicator = connect(f"/ws/live/?vhost={broker_vhost}", AnonymousUser())
        connected, _ = await communicator.connect()
        assert connected
        frame = await communicator.receive_from(timeout=5)
        assert 'id="live-tap-status"' in frame and "Sign in to watch messages." in frame
        closed = await communicator.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": CLOSE_NOT_SIGNED_IN}

    run_with_tap(run)


def test_a_bad_filter_is_reported_next_to_its_field(user, broker_vhost):
    async def run():
        query = urlencode({"vhost": broker_vhost, "kind": "sideways"})
        communicator = connect(f"/ws/live/?{query}", user)
        await communicator.connect()
        frame = await communicator.receive_from(timeout=5)
        assert 'id="filter-error-kind"' in frame
        assert "must be publish or deliver" in frame
        closed = await communicator.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": CLOSE_BAD_REQUEST}

    run_with_tap(run)


def test_one_frame_per_batch_newest_first_with_counters(user, broker_vhost):
    async def run():
        communicator = connect(f"/ws/live/?vhost={broker_vhost}", user)
        await communicator.connect()
        await send_batch(broker_vhost, [published(seq, vhost=broker_vhost) for seq in (1, 2, 3)])
        frames = await frames_until(communicator, lambda f: "live-row" in f)
        frame = frames[-1]
        assert [int(seq) for seq in ROW.findall(frame)] == [3, 2, 1]
        assert frame.count('hx-swap-oob="afterbegin:#feed"') == 1
        assert counter(frame, "shown") == 3
        total = counter(frame, "total")
        assert total == sum(
            counter(frame, name) for name in ("shown", "filtered_out", "sampled_out", "dropped")
        )
        await communicator.disconnect()

    run_with_tap(run)


def test_filters_apply_before_the_rows_are_rendered(user, broker_vhost):
    async def run():
        params = {"routing_key": "food.*", "kind": "publish"}
        query = urlencode({"vhost": broker_vhost, **params})
        communicator = connect(f"/ws/live/?{query}", user)
        await communicator.connect()
        events = [
            published(1, vhost=broker_vhost, routing_key="food.pizza"),
            published(2, vhost=broker_vhost, exchange="drink", routing_key="drink.tea"),
            delivered(3, vhost=broker_vhost, queue="pizza"),
            published(4, vhost=broker_vhost, routing_key="food.icecream"),
        ]
        await send_batch(broker_vhost, events, params=params)
        frame = (await frames_until(communicator, lambda f: "live-row" in f))[-1]
        assert [int(seq) for seq in ROW.findall(frame)] == [4, 1]
        assert counter(frame, "filtered_out") >= 2
        await communicator.disconnect()

    run_with_tap(run)


def test_untrusted_names_and_bodies_arrive_escaped(user, broker_vhost):
    async def run():
        communicator = connect(f"/ws/live/?vhost={broker_vhost}", user)
        await communicator.connect()
        nasty = published(
            1,
            vhost=broker_vhost,
            exchange="<script>alert(1)</script>",
            routing_key="<img src=x onerror=alert(2)>",
            routed_queues=["<b>q</b>"],
            headers={"h": "<script>alert(3)</script>"},
            body=b"<img src=x onerror=alert(4)>",
        )
        await send_batch(broker_vhost, [nasty])
        frame = (await frames_until(communicator, lambda f: "live-row" in f))[-1]
        assert "<script" not in frame and "<img" not in frame and "<b>" not in frame
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in frame
        assert "&lt;img src=x onerror=alert(2)&gt;" in frame
        assert "&lt;b&gt;q&lt;/b&gt;" in frame
        await communicator.disconnect()

    run_with_tap(run)


def test_bindings_mode_rows_are_predicted_from_the_topology(user, scratch_vhost):
    declare_bound_queue(scratch_vhost, exchange="food", queue="pizza", binding_key="food.pizza")

    async def run():
        communicator = connect(f"/ws/live/?vhost={scratch_vhost}", user)
        await communicator.connect()
        events = [
            published_via_bindings(1, vhost=scratch_vhost, routing_key="food.pizza"),
            published_via_bindings(2, vhost=scratch_vhost, routing_key="food.soup"),
        ]
        await send_batch(scratch_vhost, events)
        frame = (await frames_until(communicator, lambda f: "live-row" in f))[-1]
        rows = frame.split('<div class="live-row')[1:]
        newest, oldest = rows[0], rows[1]
        assert "UNROUTABLE" in newest and "predicted" in newest
        assert '<span class="queue-chip">pizza</span>' in oldest and "predicted" in oldest
        await communicator.disconnect()

    run_with_tap(run)


def test_a_message_published_on_the_broker_reaches_the_socket(user, scratch_vhost):
    """End to end: the real tap on the real broker, then this consumer."""
    routing_key = f"e2e.{uuid.uuid4().hex[:8]}"
    declare_bound_queue(scratch_vhost, exchange="events", queue="audit", binding_key="e2e.#")

    async def run():
        communicator = connect(f"/ws/live/?{urlencode({'vhost': scratch_vhost})}", user)
        await communicator.connect()
        # Wait until the tap runs before publishing: a tap sees what is published after it binds.
        await frames_until(communicator, lambda f: "tap: running" in f)

        def publish():
            with amqp_channel(scratch_vhost) as channel:
                channel.basic_publish("events", routing_key, b'{"n": 1}')

        await asyncio.to_thread(publish)
        frame = (await frames_until(communicator, lambda f: routing_key in f))[-1]
        assert "audit" in frame
        await communicator.disconnect()

    run_with_tap(run)
