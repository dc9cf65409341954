"""`/ws/tap/` on a live dashboard (daphne, in-process tap, real broker): the JSON stream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from flows.websockets.close_codes import CLOSE_BAD_REQUEST, CLOSE_FORBIDDEN, CLOSE_NOT_SIGNED_IN
from tests.support.live_server import LiveDashboard, database_url_for
from tests.support.tap_harness import amqp_channel, tap_queues
from tests.support.tap_socket import (
    is_running,
    open_tap,
    receive_json,
    receive_until,
    run_async,
    session_cookie,
    watch,
)
from tests.support.waiting import eventually, eventually_async

pytestmark = pytest.mark.usefixtures("transactional_db")

STOP_DELAY = 0.5


@pytest.fixture(scope="module")
def tap_dashboard(django_db_setup, django_db_blocker) -> Iterator[LiveDashboard]:
    """A dashboard whose taps stop half a second after their last viewer leaves."""
    from django.db import connection

    with django_db_blocker.unblock():
        database_url = database_url_for(connection.settings_dict)
    server = LiveDashboard(
        database_url=database_url,
        env={"FLOWS_TAP_STOP_DELAY": str(STOP_DELAY), "FLOWS_TAP_SYNC_INTERVAL": "0.5"},
    ).start()
    yield server
    server.stop()


def test_anonymous_websocket_is_told_to_sign_in_and_closed(
    tap_dashboard: LiveDashboard, broker_vhost: str, management_client
) -> None:
    async def scenario() -> tuple[dict, int | None]:
        async with open_tap(tap_dashboard.url, None, vhost=broker_vhost) as ws:
            message = await receive_json(ws)
            with pytest.raises(ConnectionClosed):
                await receive_json(ws)
            return message, ws.close_code

    message, code = run_async(scenario)
    assert message == {"type": "error", "field": None, "message": "Sign in to watch messages."}
    assert code == CLOSE_NOT_SIGNED_IN
    assert tap_queues(management_client, broker_vhost) == []  # no tap started for it


def test_a_foreign_origin_is_refused_at_the_handshake(
    tap_dashboard: LiveDashboard, broker_vhost: str, user
) -> None:
    cookie = session_cookie(user)
    foreign = "http://evil.example"

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with open_tap(tap_dashboard.url, cookie, origin=foreign, vhost=broker_vhost):
                pass
        assert refused.value.response.status_code == 403

    run_async(scenario)


def test_a_batch_carries_tap_events_and_cumulative_counts(
    tap_dashboard: LiveDashboard, scratch_vhost: str, user
) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("food", "topic")
        messages = watch(
            tap_dashboard.url,
            session_cookie(user),
            vhost=scratch_vhost,
            act=lambda: channel.basic_publish("food", "vanilla.icecream", b'{"scoops": 2}'),
        )
    batch = messages[-1]
    [event] = batch["events"]
    assert event["kind"] == "publish"
    assert event["vhost"] == scratch_vhost
    assert event["exchange"] == "food"
    assert event["routing_key"] == "vanilla.icecream"
    assert event["routed_queues"] is None
    assert event["body"] == {
        "preview": '{\n  "scoops": 2\n}',
        "encoding": "json",
        "size": 13,
        "truncated": False,
        "raw": "eyJzY29vcHMiOiAyfQ==",  # the body as published: the preview is pretty-printed
    }
    assert {"seq", "properties", "headers", "received_at", "queue"} <= set(event)
    assert batch["counts"]["tap"]["received"] >= 1
    assert batch["counts"]["viewer"] == {
        "received": 1, "sent": 1, "filtered_out": 0, "sampled_out": 0, "dropped": 0,
        "drop_reasons": {},
    }  # fmt: skip


def test_filters_apply_before_sampling(
    tap_dashboard: LiveDashboard, scratch_vhost: str, user
) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("t", "topic")

        def publish() -> None:
            for i in range(300):
                channel.basic_publish("t", f"noise.{i}", b"n")
                if i == 150:
                    channel.basic_publish("t", "wanted.one", b"w")

        messages = watch(
            tap_dashboard.url,
            session_cookie(user),
            vhost=scratch_vhost,
            act=publish,
            until=lambda m: m.get("counts", {}).get("viewer", {}).get("received") == 301,
            routing_key="wanted.#",
            max_rate=1,
        )
    shown = [e["routing_key"] for m in messages if m["type"] == "batch" for e in m["events"]]
    assert shown == ["wanted.one"]
    viewer = messages[-1]["counts"]["viewer"]
    assert viewer["filtered_out"] == 300
    assert viewer["sent"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "neither"}, "kind"),
        ({"max_rate": "0"}, "max_rate"),
        ({"format": "xml"}, "format"),
        ({"mode": "sideways"}, "mode"),
    ],
)
def test_bad_parameters_get_an_error_message_and_a_close(
    tap_dashboard: LiveDashboard, broker_vhost: str, user, params: dict, field: str
) -> None:
    cookie = session_cookie(user)

    async def scenario() -> tuple[dict, int | None]:
        async with open_tap(tap_dashboard.url, cookie, vhost=broker_vhost, **params) as ws:
            message = await receive_json(ws)
            with pytest.raises(ConnectionClosed):
                await receive_json(ws)
            return message, ws.close_code

    message, code = run_async(scenario)
    assert message["type"] == "error"
    assert message["field"] == field
    assert message["message"]
    assert code == CLOSE_BAD_REQUEST


def test_firehose_needs_an_administrators_permission(
    tap_dashboard: LiveDashboard, scratch_vhost: str, user, management_client
) -> None:
    from django.contrib.auth.models import Permission

    cookie = session_cookie(user)

    async def attempt() -> tuple[list[dict], int | None]:
        async with open_tap(tap_dashboard.url, cookie, vhost=scratch_vhost, mode="firehose") as ws:
            first = await receive_json(ws)
            if first["type"] != "status":
                with pytest.raises(ConnectionClosed):
                    await receive_json(ws)
                return [first], ws.close_code
            return [first, *await receive_until(ws, is_running)], None

    [refused], code = run_async(attempt)
    assert refused["type"] == "error"
    assert refused["field"] == "mode"
    assert "administrator" in refused["message"]
    assert code == CLOSE_FORBIDDEN
    assert management_client.vhost(scratch_vhost).tracing is False

    user.user_permissions.add(Permission.objects.get(codename="use_firehose"))
    allowed, _ = run_async(attempt)
    assert allowed[-1]["status"]["mode"] == "firehose"
    assert allowed[-1]["status"]["state"] == "running"
    eventually(  # restored once it stopped
        lambda: management_client.vhost(scratch_vhost).tracing is False,
        what="tracing switched off again",
        interval=0.2,
    )


def test_counts_add_up_when_publishers_outrun_the_viewer(
    tap_dashboard: LiveDashboard, scratch_vhost: str, user
) -> None:
    published = 4000
    cookie = session_cookie(user)
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("burst", "fanout")

        async def scenario() -> tuple[list[dict], int]:
            async with open_tap(tap_dashboard.url, cookie, vhost=scratch_vhost, max_rate=50) as ws:
                await receive_until(ws, is_running)
                for i in range(published):
                    channel.basic_publish("burst", "", str(i).encode())
                # Read slowly: the websocket and the channel layer back up. (The slowness is
                # the behaviour under test: this sleep stays.)
                await asyncio.sleep(1.0)

                def all_accounted(message: dict) -> bool:
                    tap = message.get("counts", {}).get("tap", {})
                    return tap.get("received", 0) + tap.get("overflow_dropped", 0) == published

                def viewer_caught_up(message: dict) -> bool:
                    counts = message.get("counts", {})
                    received = counts.get("viewer", {}).get("received")
                    return all_accounted(message) and received == counts["tap"]["received"]

                messages = await receive_until(ws, all_accounted, timeout=60)
                # What the tap received all reaches this viewer (or is counted missing).
                if not viewer_caught_up(messages[-1]):
                    messages += await receive_until(ws, viewer_caught_up)
                return messages, published

        messages, published = run_async(scenario)
    shown = sum(len(m["events"]) for m in messages if m["type"] == "batch")
    counts = messages[-1]["counts"]
    tap, viewer = counts["tap"], counts["viewer"]
    assert tap["received"] + tap["overflow_dropped"] == published
    assert viewer["received"] == (
        viewer["sent"] + viewer["filtered_out"] + viewer["sampled_out"] + viewer["dropped"]
    )
    assert viewer["dropped"] == sum(viewer["drop_reasons"].values())
    assert viewer["sampled_out"] > 0
    assert viewer["sent"] == shown
    # Every event the tap forwarded reached this viewer's accounting, one way or another.
    assert viewer["received"] == tap["received"]


def test_the_tap_stops_and_leaves_nothing_once_the_last_viewer_leaves(
    tap_dashboard: LiveDashboard, scratch_vhost: str, broker_vhost: str, user, management_client
) -> None:
    cookie = session_cookie(user)

    async def watch() -> None:
        async with (
            open_tap(tap_dashboard.url, cookie, vhost=scratch_vhost) as first,
            open_tap(tap_dashboard.url, cookie, vhost=scratch_vhost) as second,
        ):
            await receive_until(first, is_running)
            await receive_until(second, is_running)
            assert len(tap_queues(management_client, scratch_vhost)) == 2
            await first.close()
            # The marker: a viewer of another vhost comes and goes after the first one left.
            # Its tap stops a stop delay after it left; had the first one's leaving started
            # a stop (the same delay, counted from earlier), that would have come first.
            async with open_tap(tap_dashboard.url, cookie, vhost=broker_vhost) as marker:
                await receive_until(marker, is_running)
            await eventually_async(
                lambda: not tap_queues(management_client, broker_vhost),
                what="the marker's tap stopped",
                interval=0.2,
            )
            # One viewer is still there: the tap still runs.
            assert len(tap_queues(management_client, scratch_vhost)) == 2

    run_async(watch)
    eventually(
        lambda: not tap_queues(management_client, scratch_vhost),
        what="the tap's queues gone after the last viewer",
        interval=0.2,
    )
    connections = management_client.connections()
    assert not [c for c in connections if c.get("vhost") == scratch_vhost]
