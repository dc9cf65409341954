"""Counts that add up under a flood, on a live dashboard (daphne, in-process tap, real broker).

Several publisher processes flood a tapped exchange for a few seconds while viewers watch.
Once the tap has reported every message published (taken, or dropped by its bounded queue),
each viewer's counts must say exactly what happened to each of them:

    viewer received == tap received (the viewer watched from the tap's start)
    viewer received == sent + filtered out + sampled out + dropped

and `dropped` holds only events that truly never reached the viewer: the events a JSON
viewer was sent plus those it was told it missed are the tap's events, each exactly once.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.support.flood import Flood, flood
from tests.support.live_server import LiveDashboard, database_url_for
from tests.support.tap_harness import amqp_channel
from tests.support.tap_socket import is_running, open_tap, run_async, session_cookie
from tests.support.waiting import StopWaiting, eventually_async

pytestmark = pytest.mark.usefixtures("transactional_db")

FLOOD_SECONDS = 3.0
PUBLISHERS = 3


@pytest.fixture(scope="module")
def flood_dashboard(django_db_setup, django_db_blocker) -> Iterator[LiveDashboard]:
    from django.db import connection

    with django_db_blocker.unblock():
        database_url = database_url_for(connection.settings_dict)
    server = LiveDashboard(
        database_url=database_url,
        env={"FLOWS_TAP_STOP_DELAY": "0.5", "FLOWS_TAP_SYNC_INTERVAL": "0.5"},
    ).start()
    yield server
    server.stop()


def flood_of(vhost: str, exchange: str) -> Flood:
    from django.conf import settings

    return Flood(amqp_url=settings.AMQP_URL, vhost=vhost, exchange=exchange, seconds=FLOOD_SECONDS)


def everything_reported(published: int):
    """A JSON message whose tap counts account for all `published` messages (the last
    message of its batch: the viewer's counts are as of the events sent so far)."""

    def predicate(message: dict) -> bool:
        if message.get("more"):
            return False
        tap = message.get("counts", {}).get("tap", {})
        return tap.get("received", 0) + tap.get("overflow_dropped", 0) == published

    return predicate


class Reader:
    """Reads a websocket on a task of its own, keeping every message (JSON or HTML)."""

    def __init__(self, ws: ClientConnection, *, decode=json.loads) -> None:
        self.ws = ws
        self.messages: list[Any] = []
        self._decode = decode
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            self.messages.append(self._decode(raw))

    async def wait_for(self, predicate, *, what: str, timeout: float = 60) -> list[Any]:
        """Every message up to and including the first one `predicate` accepts."""

        def seen() -> list[Any]:
            """The messages up to the first one accepted ([] while there is none)."""
            if self.task.done():
                raise StopWaiting(f"the websocket closed: {self.task.exception()!r}")
            for index, message in enumerate(self.messages):
                if predicate(message):
                    return self.messages[: index + 1]
            return []

        return await eventually_async(seen, what=what, timeout=timeout, interval=0.05)


def test_a_json_viewer_counts_every_event_once_after_a_flood(
    flood_dashboard: LiveDashboard, scratch_vhost: str, user
) -> None:
    cookie = session_cookie(user)
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("flood", "fanout")

    async def scenario() -> tuple[int, list[dict]]:
        async with open_tap(flood_dashboard.url, cookie, vhost=scratch_vhost) as ws:
            reader = Reader(ws)
            await reader.wait_for(is_running, what="the tap running")
            published = await asyncio.to_thread(flood, flood_of(scratch_vhost, "flood"))
            messages = await reader.wait_for(
                everything_reported(published), what=f"the tap reporting all {published}"
            )
            return published, messages

    published, messages = run_async(scenario)
    counts = messages[-1]["counts"]
    tap, viewer = counts["tap"], counts["viewer"]
    assert tap["received"] + tap["overflow_dropped"] == published
    assert viewer["received"] == tap["received"]
    assert viewer["received"] == (
        viewer["sent"] + viewer["filtered_out"] + viewer["sampled_out"] + viewer["dropped"]
    )
    # Programs get everything: no sampling unless asked for.
    assert viewer["sampled_out"] == 0
    seqs = [event["seq"] for m in messages if m["type"] == "batch" for event in m["events"]]
    assert len(seqs) == len(set(seqs)) == viewer["sent"]
    # What it was told it missed is exactly what never came: no phantom drops.
    missing = set(range(1, tap["received"] + 1)) - set(seqs)
    assert viewer["dropped"] == len(missing)
    assert viewer["dropped"] == sum(viewer["drop_reasons"].values())


COUNTER = re.compile(r'data-counter="(\w+)">(\d+)<')
ROW_SEQ = re.compile(r'<div class="live-row[^"]*"[^>]*data-seq="(\d+)"')


def live_counters(frame: str) -> dict[str, int]:
    return {name: int(value) for name, value in COUNTER.findall(frame) if name != "rate"}


def test_the_live_page_counts_add_up_after_a_flood(
    flood_dashboard: LiveDashboard, scratch_vhost: str, user
) -> None:
    cookie = session_cookie(user)
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("flood", "fanout")
    live_url = (
        flood_dashboard.url.replace("http://", "ws://")
        + "/ws/live/?"
        + urlencode({"vhost": scratch_vhost})
    )

    async def scenario() -> tuple[int, list[str], dict]:
        async with (
            connect(
                live_url, origin=flood_dashboard.url, additional_headers={"Cookie": cookie}
            ) as live,
            open_tap(flood_dashboard.url, cookie, vhost=scratch_vhost) as tap_ws,
        ):
            page, program = Reader(live, decode=str), Reader(tap_ws)
            await program.wait_for(is_running, what="the tap running")
            await page.wait_for(lambda f: "live-tap-status" in f, what="the tap's status")
            published = await asyncio.to_thread(flood, flood_of(scratch_vhost, "flood"))
            reported = await program.wait_for(
                everything_reported(published), what=f"the tap reporting all {published}"
            )
            # At least everything: a phantom drop would take the total past `published`.
            frames = await page.wait_for(
                lambda f: live_counters(f).get("total", 0) >= published,
                what=f"the live page counting all {published}",
            )
            return published, frames, reported[-1]["counts"]["tap"]

    published, frames, tap = run_async(scenario)
    counts = live_counters(frames[-1])
    assert counts["total"] == published
    assert counts["total"] == (
        counts["shown"] + counts["filtered_out"] + counts["sampled_out"] + counts["dropped"]
    )
    seqs = [int(seq) for frame in frames for seq in ROW_SEQ.findall(frame)]
    assert len(seqs) == len(set(seqs)) == counts["shown"]
    assert counts["sampled_out"] > 0  # the page keeps its readable cap
    # Dropped: what the tap's queue overflowed, and batches this page truly never got.
    assert counts["dropped"] >= tap["overflow_dropped"]
    assert counts["dropped"] == published - counts["shown"] - counts["sampled_out"]
