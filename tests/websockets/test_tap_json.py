"""`/ws/tap/` on a live dashboard (daphne, in-process tap, real broker): the JSON stream."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pika
import pytest
from websockets.exceptions import ConnectionClosed

from flows.masking import MASKED
from flows.tap.viewer import SLOW_VIEWER
from flows.websockets.backpressure import MAX_UNSENT_BYTES
from flows.websockets.close_codes import (
    CLOSE_BAD_REQUEST,
    CLOSE_FORBIDDEN,
    CLOSE_FOREIGN_ORIGIN,
    CLOSE_NOT_SIGNED_IN,
)
from tests.support.live_server import LiveDashboard, database_url_for
from tests.support.tap_harness import amqp_channel, tap_queues
from tests.support.tap_socket import (
    is_running,
    open_slow_tap,
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
# The origin of a proxy serving the dashboard on another address (DJANGO_CSRF_TRUSTED_ORIGINS).
PROXY_ORIGIN = "https://dashboard.proxy.example"


@pytest.fixture(scope="module")
def tap_dashboard(django_db_setup, django_db_blocker) -> Iterator[LiveDashboard]:
    """A dashboard whose taps stop half a second after their last viewer leaves."""
    from django.db import connection

    with django_db_blocker.unblock():
        database_url = database_url_for(connection.settings_dict)
    server = LiveDashboard(
        database_url=database_url,
        env={
            "FLOWS_TAP_STOP_DELAY": str(STOP_DELAY),
            "FLOWS_TAP_SYNC_INTERVAL": "0.5",
            "DJANGO_CSRF_TRUSTED_ORIGINS": PROXY_ORIGIN,
        },
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


def test_a_foreign_origin_is_closed_with_a_code_the_page_explains(
    tap_dashboard: LiveDashboard, broker_vhost: str, user, management_client
) -> None:
    """Not refused at the handshake: a browser reports that as 1006, which htmx retries."""
    cookie = session_cookie(user)

    async def scenario() -> int | None:
        async with open_tap(
            tap_dashboard.url, cookie, origin="http://evil.example", vhost=broker_vhost
        ) as ws:
            with pytest.raises(ConnectionClosed):
                await receive_json(ws)  # nothing is said to another site's page
            return ws.close_code

    assert run_async(scenario) == CLOSE_FOREIGN_ORIGIN
    assert tap_queues(management_client, broker_vhost) == []  # no tap started for it


def test_a_trusted_proxy_origin_may_watch(tap_dashboard: LiveDashboard, broker_vhost: str, user):
    cookie = session_cookie(user)

    async def scenario() -> list[dict]:
        async with open_tap(
            tap_dashboard.url, cookie, origin=PROXY_ORIGIN, vhost=broker_vhost
        ) as ws:
            return await receive_until(ws, is_running)

    assert run_async(scenario)[-1]["vhost"] == broker_vhost


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
        "preview": '{"scoops": 2}',  # as published: programs are not sent indented JSON
        "encoding": "json",
        "size": 13,
        "truncated": False,
        "pretty": False,
    }
    assert {"seq", "properties", "headers", "received_at", "queue"} <= set(event)
    assert "decoded" not in event  # plain JSON: no decoder has anything to add
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


SECRET = "s3cr3t-in-a-message"


def publish_a_secret_then_an_open_one(channel) -> None:
    """A message hiding SECRET in a masked header and a masked JSON field, then one that shows
    it openly (a field no pattern names): shown after the first, on the same channel."""
    channel.basic_publish(
        "shop",
        "order.masked",
        json.dumps({"card": {"number": SECRET}, "customer": {"password": SECRET}}).encode(),
        pika.BasicProperties(headers={"Authorization": f"Bearer {SECRET}", "x-ok": "kept"}),
    )
    channel.basic_publish("shop", "order.open", json.dumps({"note": SECRET}).encode())


def test_masked_values_never_reach_the_json_stream(
    tap_dashboard: LiveDashboard, scratch_vhost: str, user
) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("shop", "topic")
        messages = watch(
            tap_dashboard.url,
            session_cookie(user),
            vhost=scratch_vhost,
            act=lambda: publish_a_secret_then_an_open_one(channel),
            until=lambda m: "order.open" in json.dumps(m),
        )
    events = {e["routing_key"]: e for m in messages if m["type"] == "batch" for e in m["events"]}
    masked = events["order.masked"]
    assert masked["headers"] == {"Authorization": MASKED, "x-ok": "kept"}
    assert json.loads(masked["body"]["preview"]) == {
        "card": MASKED,
        "customer": {"password": MASKED},
    }
    assert SECRET not in json.dumps(masked)


@pytest.mark.parametrize(
    "params",
    [{"body": SECRET}, {"header": f"Authorization=Bearer {SECRET}"}],
    ids=["body", "header"],
)
def test_a_filter_cannot_find_a_masked_value(
    tap_dashboard: LiveDashboard, scratch_vhost: str, user, params: dict
) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("shop", "topic")
        messages = watch(
            tap_dashboard.url,
            session_cookie(user),
            vhost=scratch_vhost,
            act=lambda: publish_a_secret_then_an_open_one(channel),
            # Both messages have been through the filter once the viewer received two.
            until=lambda m: m.get("counts", {}).get("viewer", {}).get("received") == 2,
            **params,
        )
    shown = [e["routing_key"] for m in messages if m["type"] == "batch" for e in m["events"]]
    assert "order.masked" not in shown
    assert messages[-1]["counts"]["viewer"]["filtered_out"] >= 1


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


def test_the_json_stream_sends_every_event_by_default(
    tap_dashboard: LiveDashboard, scratch_vhost: str, user
) -> None:
    published = 3000
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("all", "fanout")

        def publish() -> None:
            for i in range(published):
                channel.basic_publish("all", "", str(i).encode())

        messages = watch(
            tap_dashboard.url,
            session_cookie(user),
            vhost=scratch_vhost,
            act=publish,
            until=lambda m: m.get("counts", {}).get("viewer", {}).get("received") == published,
        )
    bodies = [e["body"]["preview"] for m in messages if m["type"] == "batch" for e in m["events"]]
    assert bodies == [str(i) for i in range(published)]
    viewer = messages[-1]["counts"]["viewer"]
    assert viewer["sent"] == published
    assert viewer["sampled_out"] == viewer["dropped"] == 0


def test_a_client_that_stops_reading_has_its_drops_counted_and_slows_no_one(
    tap_dashboard: LiveDashboard, scratch_vhost: str, user
) -> None:
    # About 42 MB of JSON for each viewer, offered at about 6 MB/s for 7 s: a reader keeps
    # up with that, while a stalled one falls behind by far more than its sockets and the
    # server's allowance for it (`MAX_UNSENT_BYTES`) hold.
    published, per_second = 10_000, 1500
    body = b"x" * 4096
    assert published * len(body) > 2.4 * MAX_UNSENT_BYTES
    cookie = session_cookie(user)

    def got_everything(message: dict) -> bool:
        return message.get("counts", {}).get("viewer", {}).get("received") == published

    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("big", "fanout")  # before the tap starts: bound from the start

    def publish() -> None:
        with amqp_channel(scratch_vhost) as channel:
            started = time.monotonic()
            for i in range(published):
                channel.basic_publish("big", "", body)
                if i % 100 == 99:  # paced: the offered load is the point, not a wait
                    time.sleep(max(0.0, started + (i + 1) / per_second - time.monotonic()))

    async def scenario() -> tuple[list[dict], list[dict]]:
        async with (
            open_slow_tap(tap_dashboard.url, cookie, vhost=scratch_vhost) as slow,
            open_tap(tap_dashboard.url, cookie, vhost=scratch_vhost) as fast,
        ):
            await receive_until(slow, is_running)
            await receive_until(fast, is_running)
            # The slow client reads nothing more until the fast one has every event (published
            # from a thread: this loop keeps reading for the fast one meanwhile).
            reading = asyncio.create_task(receive_until(fast, got_everything, timeout=90))
            await asyncio.to_thread(publish)
            fast_messages = await reading
            slow_messages = await receive_until(slow, got_everything, timeout=60)
            return fast_messages, slow_messages

    fast_messages, slow_messages = run_async(scenario)

    def events_in(messages: list[dict]) -> int:
        return sum(len(m["events"]) for m in messages if m["type"] == "batch")

    fast = fast_messages[-1]["counts"]
    assert fast["tap"]["received"] == published  # the tap took every message: not slowed
    assert fast["viewer"]["sent"] == events_in(fast_messages) == published
    assert fast["viewer"]["dropped"] == 0
    slow = slow_messages[-1]["counts"]["viewer"]
    assert slow["dropped"] > 0
    assert slow["drop_reasons"] == {SLOW_VIEWER: slow["dropped"]}
    assert slow["sent"] == events_in(slow_messages)
    assert slow["received"] == slow["sent"] + slow["dropped"] == published


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
