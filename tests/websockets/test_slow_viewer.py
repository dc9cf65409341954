"""One slow websocket viewer among 50 (daphne, in-process tap, real broker).

Forty-nine clients read a vhost's JSON stream while one, connected alongside them, stops
reading. The guarantee is behavioural: every reader gets every event with nothing dropped
while the slow one is dropping, and its drops are counted with their reason. How fast the
readers saw each message is printed for information only (the project has no timed tests:
a shared machine's timings prove nothing either way).

Kept cheap: one process of asyncio clients, and the dashboard's allowance for a backed-up
viewer (`FLOWS_WS_MAX_UNSENT_BYTES`) lowered to 1 MB, so a stalled reader falls behind by far
more than it within about 12 MB per viewer. A reader cannot be mistaken for a slow one: its
socket's buffers (autotuned, tens of MB on loopback) hold all of that, so the server's side
never backs up for it however briefly this process starves it of CPU.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from websockets.asyncio.client import ClientConnection

from flows.tap.viewer import SLOW_VIEWER
from tests.support.live_server import LiveDashboard, database_url_for
from tests.support.tap_harness import amqp_channel
from tests.support.tap_socket import (
    is_running,
    open_slow_tap,
    open_tap,
    receive_until,
    run_async,
    session_cookie,
)

pytestmark = pytest.mark.usefixtures("transactional_db")

READERS = 49
ALLOWANCE = 1024 * 1024
PUBLISHED, PER_SECOND = 1400, 500
PADDING = b"x" * 8192
# The slow one's backlog must outgrow the server's send buffer (at most 4 MB here,
# net.ipv4.tcp_wmem) plus the allowance: about 12 MB is offered to every viewer.
assert PUBLISHED * len(PADDING) > 2 * (4 * 1024 * 1024 + ALLOWANCE)


@pytest.fixture(scope="module")
def slow_viewer_dashboard(django_db_setup, django_db_blocker) -> Iterator[LiveDashboard]:
    from django.db import connection

    with django_db_blocker.unblock():
        database_url = database_url_for(connection.settings_dict)
    server = LiveDashboard(
        database_url=database_url,
        env={
            "FLOWS_TAP_STOP_DELAY": "0.5",
            "FLOWS_TAP_SYNC_INTERVAL": "0.5",
            "FLOWS_WS_MAX_UNSENT_BYTES": str(ALLOWANCE),
        },
    ).start()
    yield server
    server.stop()


@dataclass
class Reading:
    """What one reading client saw: events, the last counts, and each event's latency."""

    events: int = 0
    counts: dict = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)


def got_everything(message: dict) -> bool:
    return message.get("counts", {}).get("viewer", {}).get("received") == PUBLISHED


async def read_everything(ws: ClientConnection) -> Reading:
    """Read until the viewer's counts say every message reached it; keep only the figures
    (49 clients' worth of messages would not fit in memory cheaply)."""
    reading = Reading()

    async def read() -> None:
        async for frame in ws:
            received = time.time()
            message = json.loads(frame)
            if message.get("type") == "batch":
                for event in message["events"]:
                    reading.events += 1
                    sent_at = float(event["body"]["preview"].split(" ", 1)[0])
                    reading.latencies.append(received - sent_at)
            if "counts" in message:
                reading.counts = message["counts"]
            if got_everything(message):
                return
        raise AssertionError(f"the websocket closed; last counts: {reading.counts}")

    await asyncio.wait_for(read(), timeout=180)
    return reading


def publish(vhost: str) -> None:
    """Paced: the offered load (about 4 MB/s to each viewer) is the point, not a wait. Each
    body starts with its publish time, for the latency figures."""
    with amqp_channel(vhost) as channel:
        started = time.monotonic()
        for i in range(PUBLISHED):
            channel.basic_publish("big", "", f"{time.time():.6f} ".encode() + PADDING)
            if i % 50 == 49:
                time.sleep(max(0.0, started + (i + 1) / PER_SECOND - time.monotonic()))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def test_one_slow_viewer_among_50_drops_and_counts_while_the_others_get_everything(
    slow_viewer_dashboard: LiveDashboard, scratch_vhost: str, user
) -> None:
    cookie = session_cookie(user)
    url = slow_viewer_dashboard.url
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("big", "fanout")  # before the tap starts: bound from the start

    async def scenario() -> tuple[list[Reading], list[dict]]:
        readers = [open_tap(url, cookie, vhost=scratch_vhost) for _ in range(READERS)]
        sockets = [await reader.__aenter__() for reader in readers]
        try:
            async with open_slow_tap(url, cookie, vhost=scratch_vhost) as slow:
                await receive_until(slow, is_running)
                for ws in sockets:
                    await receive_until(ws, is_running)
                # The slow client reads nothing more until every reader has every event.
                reading = [asyncio.create_task(read_everything(ws)) for ws in sockets]
                await asyncio.to_thread(publish, scratch_vhost)
                readings = list(await asyncio.gather(*reading))
                slow_messages = await receive_until(slow, got_everything, timeout=120)
                return readings, slow_messages
        finally:
            for reader in readers:
                await reader.__aexit__(None, None, None)

    readings, slow_messages = run_async(scenario)

    for reading in readings:
        tap, viewer = reading.counts["tap"], reading.counts["viewer"]
        assert tap["received"] == PUBLISHED  # the tap took every message: not slowed
        assert viewer["received"] == viewer["sent"] == reading.events == PUBLISHED
        assert viewer["dropped"] == 0 and not viewer["drop_reasons"]
    slow = slow_messages[-1]["counts"]["viewer"]
    shown = sum(len(m["events"]) for m in slow_messages if m["type"] == "batch")
    assert slow["dropped"] > 0
    assert slow["drop_reasons"] == {SLOW_VIEWER: slow["dropped"]}
    assert slow["received"] == slow["sent"] + slow["dropped"] == PUBLISHED
    assert slow["sent"] == shown

    latencies = [latency for reading in readings for latency in reading.latencies]
    print(
        f"\n{READERS} readers, {PUBLISHED} messages at {PER_SECOND}/s; slow viewer dropped"
        f" {slow['dropped']}: publish-to-receive latency p50"
        f" {statistics.median(latencies) * 1000:.0f} ms, p99"
        f" {percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )
