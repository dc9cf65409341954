"""The firehose-mode tap on the real broker: real routes, and tracing always put back."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from flows.models import TapFirehoseLease
from flows.tap.firehose import restore_stale_leases
from tests.support.tap_harness import amqp_channel, running_tap, tap_queues

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_shows_each_publish_with_its_route_and_each_delivery(
    scratch_vhost: str, management_client
) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("food", "topic")
        channel.queue_declare("icecream")
        channel.queue_bind("icecream", "food", "*.icecream")
        channel.queue_declare("work")
        with running_tap(scratch_vhost, "firehose") as (_, collector):
            assert collector.status["coverage"]["not_covered"] == []
            assert "" in collector.status["coverage"]["exchanges"]
            channel.basic_publish("food", "vanilla.icecream", b'{"scoops": 2}')
            channel.basic_publish("food", "no.match.here", b"lost")
            channel.basic_publish("", "work", b"task")
            channel.basic_publish("", "no-such-queue", b"dropped")
            collector.wait_events(4)
            _method, _, body = channel.basic_get("work", auto_ack=True)
            assert body == b"task"
            events = collector.wait_events(5)
            # The marker: the tap's own deliveries of the five events above happened before
            # it was published, so shown, they would come before it.
            channel.basic_publish("food", "marker", b"marker")
            marker = collector.wait_for_event(
                lambda e: e["routing_key"] == "marker", what="the marker"
            )
            assert marker == 5  # the tap's own deliveries are not shown
    publishes = [e for e in events if e["kind"] == "publish"]
    assert [(e["exchange"], e["routing_key"], e["routed_queues"], e["unroutable"])
            for e in publishes] == [
        ("food", "vanilla.icecream", ["icecream"], False),
        ("food", "no.match.here", [], True),
        ("", "work", ["work"], False),
        # The broker names the key's queue for the default exchange even when it does not
        # exist; the tap knows better.
        ("", "no-such-queue", [], True),
    ]  # fmt: skip
    assert publishes[0]["body"]["encoding"] == "json"
    assert publishes[0]["user"] == "guest"
    assert publishes[0]["connection"]
    [deliver] = [e for e in events if e["kind"] == "deliver"]
    assert deliver["queue"] == "work"
    assert deliver["redelivered"] is False
    assert deliver["body"]["preview"] == "task"
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert tap_queues(management_client, scratch_vhost) == []


@pytest.mark.parametrize("tracing_before", [False, True])
def test_tracing_is_restored_when_the_tap_stops(
    scratch_vhost: str, management_client, tracing_before: bool
) -> None:
    management_client.set_tracing(scratch_vhost, enabled=tracing_before)
    with running_tap(scratch_vhost, "firehose") as (_, collector):
        assert management_client.vhost(scratch_vhost).tracing is True
        assert TapFirehoseLease.objects.filter(vhost=scratch_vhost).count() == 1
        switched = any(
            "switches it off again" in w for w in collector.status["coverage"]["warnings"]
        )
        assert switched is (not tracing_before)
    assert management_client.vhost(scratch_vhost).tracing is tracing_before
    assert not TapFirehoseLease.objects.filter(vhost=scratch_vhost).exists()


def _dead_lease(vhost: str, *, was_on: bool) -> TapFirehoseLease:
    return TapFirehoseLease.objects.create(
        vhost=vhost,
        tracing_was_on=was_on,
        owner="some-other-host:1",
        heartbeat_at=timezone.now() - dt.timedelta(minutes=5),
    )


def test_a_dead_taps_tracing_is_restored(scratch_vhost: str, management_client) -> None:
    management_client.set_tracing(scratch_vhost, enabled=True)  # left on by a crashed tap
    _dead_lease(scratch_vhost, was_on=False)
    assert scratch_vhost in restore_stale_leases()
    assert management_client.vhost(scratch_vhost).tracing is False
    assert not TapFirehoseLease.objects.filter(vhost=scratch_vhost).exists()


def test_the_next_tap_inherits_a_dead_taps_promise(scratch_vhost: str, management_client):
    management_client.set_tracing(scratch_vhost, enabled=True)  # left on by a crashed tap
    _dead_lease(scratch_vhost, was_on=False)
    with running_tap(scratch_vhost, "firehose"):
        assert management_client.vhost(scratch_vhost).tracing is True
    assert management_client.vhost(scratch_vhost).tracing is False
    assert not TapFirehoseLease.objects.filter(vhost=scratch_vhost).exists()


def test_a_live_taps_lease_is_not_restored(scratch_vhost: str, management_client) -> None:
    with running_tap(scratch_vhost, "firehose"):
        assert restore_stale_leases() == []
        assert management_client.vhost(scratch_vhost).tracing is True
    assert management_client.vhost(scratch_vhost).tracing is False


def test_a_vhost_deleted_under_the_tap_is_not_brought_back_when_it_stops(management_client):
    """Putting tracing back is a PUT of the vhost, which would create it again: a tap that
    outlives its vhost (a demo unloaded, a colleague's cleanup) must leave it deleted."""
    import contextlib
    import uuid

    from flows.broker.errors import BrokerNotFound
    from tests.support.vhosts import make_vhost

    vhost = make_vhost(management_client, f"flows-test-{uuid.uuid4().hex[:10]}")
    try:
        with running_tap(vhost, "firehose") as (_, collector):
            assert management_client.vhost(vhost).tracing is True
            management_client.remove_vhost(vhost)
            collector.wait_for(
                lambda: collector.status["state"] in ("reconnecting", "error"),
                what="the tap losing its vhost",
            )
        assert not TapFirehoseLease.objects.filter(vhost=vhost).exists()
        with pytest.raises(BrokerNotFound):
            management_client.vhost(vhost)
    finally:
        with contextlib.suppress(BrokerNotFound):
            management_client.remove_vhost(vhost)
