"""The process's runtime: one owner of process-wide state, one stop, on the real broker.

What a `Runtime` holds, and how it stops: the taps on their loop or from outside it, the
publishers, the cache's workers, the client. The processes that stop it on SIGTERM and
SIGINT are tested where they start: `tests/dashboard/test_asgi.py` (daphne, `manage.py
serve`) and `tests/management/commands/test_tap.py`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import pytest

from flows.broker.management_api import ManagementClient
from flows.publishing.fields import parse_publish_request
from flows.runtime import Runtime
from flows.tap.manager import TapManager
from tests.support.tap_harness import (
    amqp_channel,
    assert_the_dashboard_left_nothing,
    dashboard_connections,
    tap_queues,
)
from tests.support.tap_socket import run_async
from tests.support.waiting import eventually, eventually_async

# --- what a runtime holds -----------------------------------------------------------------------

MEMBERS = [
    "management_client",
    "topology_cache",
    "publishers",
    "idempotent_publishes",
    "firehose_observations",
    "queue_histories",
    "demo_runs",
]


@pytest.mark.parametrize("member", MEMBERS)
def test_each_member_is_made_once_and_shared_until_a_stop(member: str) -> None:
    runtime = Runtime()
    first = getattr(runtime, member)
    assert getattr(runtime, member) is first
    runtime.stop()
    assert getattr(runtime, member) is not first  # made afresh after the stop
    runtime.stop()


def test_a_stop_closes_the_management_client() -> None:
    runtime = Runtime()
    client = runtime.management_client
    assert client.overview().product_name
    runtime.stop()
    with pytest.raises(RuntimeError, match="closed"):
        client.overview()


def test_a_stop_ends_the_topology_caches_worker_threads(scratch_vhost: str) -> None:
    runtime = Runtime()
    before = set(threading.enumerate())
    cache = runtime.topology_cache
    # The async face reads in a worker thread of the cache's.
    assert run_async(lambda: cache.latest(scratch_vhost, wait=True)) is not None
    workers = {thread for thread in set(threading.enumerate()) - before if thread.is_alive()}
    assert any(thread.name.startswith("topology-refresh") for thread in workers)
    runtime.stop()
    assert not [thread for thread in workers if thread.is_alive()]


def test_a_stop_cancels_repeat_runs_and_closes_the_publishers_connection(
    scratch_vhost: str, management_client: ManagementClient
) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.queue_declare("work")
    runtime = Runtime()
    request = parse_publish_request(
        {"vhost": scratch_vhost, "routing_key": "work", "repeat": "100000", "rate": "100"}
    )
    run = runtime.publishers.start_repeat(request)
    eventually(lambda: run.published > 0, what="the run publishing")
    eventually(
        lambda: dashboard_connections(management_client, scratch_vhost),
        what="the publisher's connection listed",
    )
    runtime.stop()
    assert run.finished
    assert run.state == "cancelled"
    assert run.published < 100000
    eventually(
        lambda: not dashboard_connections(management_client, scratch_vhost),
        what="the publisher's connection closed",
    )


def test_a_stop_stops_the_demo_runs_and_closes_their_connections(
    db: None, management_client: ManagementClient
) -> None:
    import uuid

    from flows.demo.loading import load, unload
    from flows.demo.scenario import load_scenario

    vhost = f"flows-test-demo-{uuid.uuid4().hex[:10]}"
    scenario = load_scenario("topics")
    load(scenario, vhost=vhost, client=management_client)
    try:
        runtime = Runtime()
        run = runtime.demo_runs.start(scenario, vhost)
        eventually(
            lambda: len(management_client.connections(vhost)) >= 6,
            what="the scenario's three workers and three publishers connected",
        )
        runtime.stop()
        assert not run.running
        eventually(
            lambda: management_client.connections(vhost) == [],
            what="every connection of the run closed",
        )
    finally:
        unload("topics", vhost=vhost, client=management_client)


# --- the tap manager and its loop ---------------------------------------------------------------


async def tap_manager_of(runtime: Runtime) -> TapManager:
    return runtime.tap_manager()


def test_the_tap_manager_belongs_to_the_loop_it_was_first_asked_from() -> None:
    runtime = Runtime()

    async def first_loop() -> TapManager:
        first = runtime.tap_manager()
        assert runtime.tap_manager() is first
        # Another loop (another thread's) is refused while this one holds it...
        with pytest.raises(RuntimeError, match="another event loop"):
            await asyncio.to_thread(run_async, tap_manager_of, runtime)
        await runtime.astop()
        return first

    first = run_async(first_loop)
    # ...and after the stop, the next loop to ask gets a manager of its own.
    assert run_async(tap_manager_of, runtime) is not first
    runtime.stop()


def test_stop_is_refused_on_the_tap_managers_own_loop() -> None:
    runtime = Runtime()

    async def stop_the_wrong_way() -> None:
        runtime.tap_manager()
        with pytest.raises(RuntimeError, match="await astop"):
            runtime.stop()
        await runtime.astop()

    run_async(stop_the_wrong_way)


@pytest.fixture
def firehose_tap(
    scratch_vhost: str, management_client: ManagementClient, transactional_db: None
) -> Callable[[Runtime], Awaitable[None]]:
    """`await join(runtime)`: one viewer of a firehose tap on `scratch_vhost`, running, on the
    runtime's tap manager (so on the loop that awaits it)."""
    assert management_client.vhost(scratch_vhost).tracing is False

    async def join(runtime: Runtime) -> None:
        manager = runtime.tap_manager()
        viewer = await manager.layer.new_channel()
        runner = await manager.join(scratch_vhost, viewer, mode="firehose", firehose_allowed=True)
        await eventually_async(
            lambda: runner.tap.status()["state"] == "running", what="the tap running"
        )
        assert management_client.vhost(scratch_vhost).tracing is True
        assert len(tap_queues(management_client, scratch_vhost)) == 2

    return join


def test_astop_on_the_loop_stops_its_taps(
    firehose_tap, scratch_vhost: str, management_client: ManagementClient
) -> None:
    runtime = Runtime()

    async def scenario() -> None:
        await firehose_tap(runtime)
        await runtime.astop()

    run_async(scenario)
    assert_the_dashboard_left_nothing(management_client, scratch_vhost)


def test_stop_from_another_thread_stops_the_taps_on_their_running_loop(
    firehose_tap, scratch_vhost: str, management_client: ManagementClient
) -> None:
    runtime = Runtime()
    loop = asyncio.new_event_loop()
    serving = threading.Thread(target=loop.run_forever)
    serving.start()
    try:
        asyncio.run_coroutine_threadsafe(firehose_tap(runtime), loop).result(60)
        runtime.stop()
        assert_the_dashboard_left_nothing(management_client, scratch_vhost)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        serving.join()
        loop.close()


def test_stop_after_the_loop_ended_stops_the_tap_threads(
    firehose_tap, scratch_vhost: str, management_client: ManagementClient
) -> None:
    runtime = Runtime()
    run_async(firehose_tap, runtime)  # the loop ends; the tap's thread runs on
    assert management_client.vhost(scratch_vhost).tracing is True
    runtime.stop()  # what the stop at interpreter exit does
    assert_the_dashboard_left_nothing(management_client, scratch_vhost)
