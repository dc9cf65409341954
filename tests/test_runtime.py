"""The process's runtime: one owner of process-wide state, one stop, on the real broker.

First what a `Runtime` holds and how it stops (taps on their loop or from outside it,
publishers, the cache's workers, the client); then the processes that serve: daphne (as
`manage.py serve` runs it) and `manage.py tap`, each sent SIGTERM or SIGINT while a firehose
tap runs, must put tracing back, delete the tap's queues and leave no connection behind.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Awaitable, Callable

import httpx
import pytest

from flows.broker.amqp import CONNECTION_NAME_PREFIX
from flows.broker.management_api import ManagementClient
from flows.models import TapFirehoseLease
from flows.publishing.fields import parse_publish_request
from flows.runtime import Runtime
from flows.tap.manager import TapManager
from tests.conftest import TEST_PASSWORD
from tests.live_server import LiveDashboard, database_url_for
from tests.tap.helpers import amqp_channel, tap_queues
from tests.tap.test_tap_process import REDIS_URL, TapProcess
from tests.tap.ws import is_running, open_tap, receive_until, run_async, session_cookie
from tests.waiting import eventually, eventually_async


def dashboard_connections(client: ManagementClient, vhost: str) -> list[str]:
    """The names of the dashboard's AMQP connections to `vhost` the broker lists."""
    names = []
    for connection in client.connections(vhost):
        name = str((connection.get("client_properties") or {}).get("connection_name") or "")
        if name.startswith(CONNECTION_NAME_PREFIX):
            names.append(name)
    return names


# --- what a runtime holds -----------------------------------------------------------------------

MEMBERS = [
    "management_client",
    "topology_cache",
    "publishers",
    "idempotent_publishes",
    "firehose_observations",
    "queue_histories",
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


def assert_the_tap_left_nothing(client: ManagementClient, vhost: str) -> None:
    """Tracing off again (it was off), the tap's queues deleted, its lease released, and no
    connection of the dashboard's left on the vhost."""
    assert client.vhost(vhost).tracing is False
    assert tap_queues(client, vhost) == []
    assert not TapFirehoseLease.objects.filter(vhost=vhost).exists()
    eventually(lambda: not dashboard_connections(client, vhost), what="the tap's connection closed")


def test_astop_on_the_loop_stops_its_taps(
    firehose_tap, scratch_vhost: str, management_client: ManagementClient
) -> None:
    runtime = Runtime()

    async def scenario() -> None:
        await firehose_tap(runtime)
        await runtime.astop()

    run_async(scenario)
    assert_the_tap_left_nothing(management_client, scratch_vhost)


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
        assert_the_tap_left_nothing(management_client, scratch_vhost)
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
    assert_the_tap_left_nothing(management_client, scratch_vhost)


# --- the processes that serve, stopped by a signal ----------------------------------------------


@pytest.fixture
def watcher(user):
    """A user allowed to switch tracing on (`mode=firehose`) and to publish."""
    from django.contrib.auth.models import Permission

    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["use_firehose", "publish_messages"], content_type__app_label="flows"
        )
    )
    return user


class ServeCommand(LiveDashboard):
    """`manage.py serve`, which checks the broker, migrates and then replaces itself with
    daphne: the signal reaches daphne under the same process id."""

    def argv(self) -> list[str]:
        return [sys.executable, "manage.py", "serve", "--port", str(self.port)]


@pytest.fixture
def database_url(django_db_setup: None, django_db_blocker) -> str:
    from django.db import connection

    with django_db_blocker.unblock():
        return database_url_for(connection.settings_dict)


def stop_with(process, sig: signal.Signals) -> int:
    """Send `sig` and wait for the process to end; its exit status."""
    process.send_signal(sig)
    return process.wait(timeout=60)


@pytest.mark.parametrize(
    ("server", "sig"),
    [
        (LiveDashboard, signal.SIGTERM),
        (LiveDashboard, signal.SIGINT),
        (ServeCommand, signal.SIGTERM),
    ],
    ids=["daphne-SIGTERM", "daphne-SIGINT", "serve-SIGTERM"],
)
def test_the_web_process_stopped_by_a_signal_restores_tracing_and_leaves_nothing(
    server: type[LiveDashboard],
    sig: signal.Signals,
    database_url: str,
    transactional_db: None,
    watcher,
    scratch_vhost: str,
    management_client: ManagementClient,
) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.queue_declare("work")
    dashboard = server(database_url=database_url).start()
    try:

        async def watch_then_stop() -> int:
            cookie = session_cookie(watcher)
            async with open_tap(dashboard.url, cookie, vhost=scratch_vhost, mode="firehose") as ws:
                status = (await receive_until(ws, is_running))[-1]["status"]
                assert status["mode"] == "firehose"
                # A publisher connection too, besides the tap's.
                published = await asyncio.to_thread(
                    httpx.post,
                    f"{dashboard.url}/api/publish",
                    json={"vhost": scratch_vhost, "exchange": "", "routing_key": "work"},
                    auth=(watcher.username, TEST_PASSWORD),
                    timeout=30,
                )
                assert published.json()["status"] == "routed", published.text
                assert management_client.vhost(scratch_vhost).tracing is True
                assert len(tap_queues(management_client, scratch_vhost)) == 2
                await asyncio.to_thread(
                    eventually,
                    lambda: len(dashboard_connections(management_client, scratch_vhost)) == 2,
                    what="the tap's and the publisher's connections listed",
                )
                assert dashboard.process is not None
                return await asyncio.to_thread(stop_with, dashboard.process, sig)

        assert run_async(watch_then_stop) == 0, dashboard.output()
    finally:
        dashboard.stop()
    assert_the_tap_left_nothing(management_client, scratch_vhost)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_tap_process_stopped_by_a_signal_restores_tracing_and_leaves_nothing(
    sig: signal.Signals,
    database_url: str,
    transactional_db: None,
    watcher,
    scratch_vhost: str,
    management_client: ManagementClient,
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "CHANNEL_LAYER_URL": REDIS_URL,
        "FLOWS_TAP_CONTROL_CHANNEL": f"flows-tap-control-test-{scratch_vhost}",
    }
    tap = TapProcess(env)
    dashboard = LiveDashboard(database_url=database_url, env=env).start()
    try:

        async def watch_then_stop() -> int:
            cookie = session_cookie(watcher)
            async with open_tap(dashboard.url, cookie, vhost=scratch_vhost, mode="firehose") as ws:
                status = (await receive_until(ws, is_running))[-1]["status"]
                assert status["mode"] == "firehose"
                assert management_client.vhost(scratch_vhost).tracing is True
                assert len(tap_queues(management_client, scratch_vhost)) == 2
                return await asyncio.to_thread(stop_with, tap.process, sig)

        assert run_async(watch_then_stop) == 0, tap.output()
        assert "tap process stopped" in tap.output()
    finally:
        dashboard.stop()
        tap.stop()
    assert_the_tap_left_nothing(management_client, scratch_vhost)
