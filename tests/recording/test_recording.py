"""Recordings on the real broker: a recorded flow's timeline, the size and time bounds, who
may start one and who sees that one runs."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import pika
import pytest
from channels.db import database_sync_to_async
from django.test import AsyncClient, Client

from flows.models import RecordedEvent, Recording
from flows.recording import store
from flows.runtime import runtime
from tests.support.accounts import make_user
from tests.support.communicators import run_with_tap
from tests.support.tap_harness import amqp_channel, tap_queues
from tests.support.waiting import eventually_async

pytestmark = pytest.mark.django_db(transaction=True)


def publish(vhost: str, exchange: str, routing_key: str, message_id: str, body: bytes = b"{}"):
    with amqp_channel(vhost) as channel:
        channel.basic_publish(
            exchange, routing_key, body, pika.BasicProperties(message_id=message_id)
        )


async def until_recording(vhost: str, recording_id: int, exchange: str, routing_key: str) -> None:
    """Publish probes until the recorder stores one: its tap is bound (or tracing is on)."""
    probes = 0

    async def probe_recorded() -> bool:
        nonlocal probes
        probes += 1
        await asyncio.to_thread(publish, vhost, exchange, routing_key, f"probe-{probes}")
        await asyncio.sleep(0.3)  # lets the probe reach the recorder (not a proof of absence)
        count = await database_sync_to_async(
            RecordedEvent.objects.filter(
                recording_id=recording_id, message_id__startswith="probe"
            ).count
        )()
        assert count, f"{probes} probes, none recorded yet"
        return True

    await eventually_async(probe_recorded, what="the recorder to record", timeout=30)


async def tap_gone(client, vhost: str) -> None:
    async def no_tap_queue() -> bool:
        assert await asyncio.to_thread(tap_queues, client, vhost) == []
        return True

    await eventually_async(no_tap_queue, what="the tap's queue to go")


def reject_then_drain_dlq(vhost: str) -> None:
    """Publish m-1 to `shop`, take it from `work` and reject it (dead-lettered through `dlx`
    into `dlq`), then take it from `dlq` and ack it."""
    with amqp_channel(vhost) as channel:
        channel.confirm_delivery()
        channel.basic_publish(
            "shop",
            "order",
            b'{"order": 4711, "password": "hunter2"}',
            pika.BasicProperties(message_id="m-1", headers={"tenant": "acme", "token": "t0k"}),
        )
        method, _, _ = channel.basic_get("work")
        assert method is not None
        channel.basic_reject(method.delivery_tag, requeue=False)
        for _ in range(50):
            method, _, _ = channel.basic_get("dlq")
            if method is not None:
                break
        assert method is not None, "the rejected message never reached the DLQ"
        channel.basic_ack(method.delivery_tag)


def declare_shop(vhost: str) -> None:
    with amqp_channel(vhost) as channel:
        channel.exchange_declare("shop", "direct")
        channel.exchange_declare("dlx", "fanout")
        channel.queue_declare("dlq")
        channel.queue_bind("dlq", "dlx")
        channel.queue_declare("work", arguments={"x-dead-letter-exchange": "dlx"})
        channel.queue_bind("work", "shop", "order")


def test_a_recorded_flow_shows_its_whole_timeline_in_order(scratch_vhost, fresh_runtime):
    admin = make_user("ada", role="admin")
    declare_shop(scratch_vhost)

    async def run() -> None:
        client = AsyncClient()
        await client.aforce_login(admin)
        response = await client.post(
            "/recordings/start", {"vhost": scratch_vhost, "hours": "1", "max_mb": "10"}
        )
        assert response.status_code == 302
        recording = await database_sync_to_async(Recording.objects.get)(vhost=scratch_vhost)
        await until_recording(scratch_vhost, recording.pk, "", "nowhere")
        await asyncio.to_thread(reject_then_drain_dlq, scratch_vhost)

        async def three_recorded() -> bool:
            count = await database_sync_to_async(
                RecordedEvent.objects.filter(recording=recording, message_id="m-1").count
            )()
            assert count >= 3, f"{count} events of m-1 recorded"
            return True

        await eventually_async(three_recorded, what="m-1's publish and two deliveries")
        await database_sync_to_async(store.stop)(recording.pk, user=admin)

    run_with_tap(run)
    recording = Recording.objects.get(vhost=scratch_vhost)
    assert recording.mode == "firehose" and recording.state == Recording.STOPPED
    client = Client()
    client.force_login(admin)
    answer = client.get(f"/api/messages?vhost={quote(scratch_vhost, safe='')}&message_id=m-1")
    assert answer.status_code == 200, answer.content
    steps = answer.json()["timeline"]
    assert [step["kind"] for step in steps] == [
        "published",
        "routed",
        "delivered",
        "dead-lettered",
        "delivered",
    ]
    assert (steps[0]["exchange"], steps[0]["routing_key"]) == ("shop", "order")
    assert steps[0]["connection"] and steps[0]["user"] == "guest"
    assert steps[1]["queues"] == ["work"]
    assert steps[2]["queue"] == "work" and steps[2]["note"].startswith("ack not observed")
    assert (steps[3]["reason"], steps[3]["queue"]) == ("rejected", "work")
    assert steps[4]["queue"] == "dlq"
    page = client.get(f"/messages/?vhost={quote(scratch_vhost, safe='')}&message_id=m-1")
    assert page.status_code == 200 and b"dead-lettered (rejected) from queue" in page.content
    export = b"".join(client.get(f"/recordings/{recording.pk}/export").streaming_content)
    assert len(export.splitlines()) == recording.events_stored

    # Found by a header's value or by body text too, with the same timeline; never by a
    # value FLOWS_MASK hides (the recording holds the masked event only).
    def search(**params: str):
        answer = client.get("/api/messages", {"vhost": scratch_vhost, **params})
        assert answer.status_code == 200, answer.content
        return answer.json()

    for params in ({"body": "4711"}, {"header": "tenant=acme"}):
        found = search(**params)
        assert found["candidates"] == ["m-1"], params
        assert [step["kind"] for step in found["timeline"]] == [step["kind"] for step in steps]
    for hidden in ({"body": "hunter2"}, {"header": "token=t0k"}, {"body": "no such text"}):
        assert search(**hidden)["candidates"] == [], hidden
    assert b"hunter2" not in export and b"t0k" not in export
    page = client.get("/messages/", {"vhost": scratch_vhost, "header": "tenant=acme"})
    assert b"dead-lettered (rejected) from queue" in page.content
    # "Send it again" from the recorded message: here refused with the reason, since its
    # recorded form holds masked values (publishing it would send the mask's dots).
    published = answer.json()["published_event"]
    assert published["kind"] == "publish" and published["properties"]["message_id"] == "m-1"
    assert "hunter2" not in json.dumps(published)
    assert b'data-testid="send-again-blocker"' in page.content and b"FLOWS_MASK" in page.content
    refused = client.post("/live/publish-again", {"event": json.dumps(published)})
    assert b"FLOWS_MASK" in refused.content
    bad = client.get("/api/messages", {"vhost": scratch_vhost, "header": "=x"})
    assert bad.status_code == 400 and "header" in bad.json()["fields"]


def test_a_recording_stops_at_its_size_bound_and_leaves_the_tap(
    scratch_vhost, management_client, fresh_runtime, settings
):
    settings.FLOWS_TAP_STOP_DELAY = 0.1
    publisher = make_user("pat", role="publisher")  # no firehose: the tap binds (auto)
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("events", "topic")
    bound = 3000

    async def run() -> None:
        recording = await database_sync_to_async(store.start)(
            vhost=scratch_vhost, user=publisher, hours=1, max_bytes=bound
        )
        runtime().recorders.start(recording.pk, scratch_vhost, publisher)
        await until_recording(scratch_vhost, recording.pk, "events", "a.b")

        async def full() -> bool:
            await asyncio.to_thread(publish, scratch_vhost, "events", "a.b", "filler", b"x" * 200)
            await recording.arefresh_from_db()
            assert recording.state == Recording.FULL, recording.state
            return True

        await eventually_async(full, what="the recording to fill", timeout=30)
        assert 0 < recording.bytes_stored <= bound
        assert "size bound" in recording.message

        await tap_gone(management_client, scratch_vhost)

    run_with_tap(run)
    size = sum(
        store.event_size(e.event)
        for e in RecordedEvent.objects.filter(recording__vhost=scratch_vhost)
    )
    assert size == Recording.objects.get(vhost=scratch_vhost).bytes_stored


def test_expiry_stops_a_recording_and_its_tap_goes(
    scratch_vhost, management_client, fresh_runtime, settings
):
    settings.FLOWS_TAP_STOP_DELAY = 0.1
    publisher = make_user("pat", role="publisher")
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("events", "topic")

    async def run() -> None:
        recording = await database_sync_to_async(store.start)(
            vhost=scratch_vhost, user=publisher, hours=3 / 3600, max_bytes=10**6
        )
        task = runtime().recorders.start(recording.pk, scratch_vhost, publisher)

        async def tap_bound() -> bool:
            assert await asyncio.to_thread(tap_queues, management_client, scratch_vhost)
            return True

        await eventually_async(tap_bound, what="the recorder's tap")
        await asyncio.wait_for(task, timeout=20)
        await recording.arefresh_from_db()
        assert recording.state == Recording.EXPIRED

        await tap_gone(management_client, scratch_vhost)

    run_with_tap(run)


def test_a_viewer_cannot_start_a_recording(scratch_vhost):
    client = Client()
    client.force_login(make_user("vic", role="viewer"))
    response = client.post("/recordings/start", {"vhost": scratch_vhost})
    assert response.status_code == 403
    assert not Recording.objects.exists()


def test_everyone_sees_on_the_live_page_that_a_recording_runs(scratch_vhost):
    admin = make_user("ada", role="admin")
    recording = store.start(vhost=scratch_vhost, user=admin, hours=2, max_bytes=5 * 1024**2)
    client = Client()
    client.force_login(make_user("vic", role="viewer"))
    page = client.get(f"/live/?vhost={quote(scratch_vhost, safe='')}")
    assert page.status_code == 200
    text = page.content.decode()
    assert f'data-recording="{recording.pk}"' in text
    assert "5.0\xa0MB" in text and f"{recording.ends_at:%Y-%m-%d %H:%M}" in text
    assert 'data-testid="recording-stop"' not in text  # a viewer may not stop it
    assert 'data-testid="recording-start"' not in text


def test_a_recording_stops_with_the_dashboard_and_leaves_no_tap(
    scratch_vhost, management_client, fresh_runtime
):
    publisher = make_user("pat", role="publisher")
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("events", "topic")

    async def run() -> None:
        recording = await database_sync_to_async(store.start)(
            vhost=scratch_vhost, user=publisher, hours=1, max_bytes=10**6
        )
        runtime().recorders.start(recording.pk, scratch_vhost, publisher)
        await until_recording(scratch_vhost, recording.pk, "events", "a.b")
        await runtime().astop()  # as daphne does when it shuts down
        await recording.arefresh_from_db()
        assert recording.state == Recording.STOPPED
        assert recording.message == "stopped by the dashboard stopping"

        await tap_gone(management_client, scratch_vhost)

    run_with_tap(run)
