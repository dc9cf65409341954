"""The web process (daphne serving `dashboard.asgi`, also as `manage.py serve` runs it) stopped
by SIGTERM or SIGINT while a firehose tap and a publisher run: it stops the runtime first, so
tracing is put back, the tap's queues are deleted and no connection is left behind."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import httpx
import pytest

from flows.broker.management_api import ManagementClient
from tests.support.accounts import TEST_PASSWORD
from tests.support.live_server import LiveDashboard, database_url_for
from tests.support.tap_harness import (
    amqp_channel,
    assert_the_dashboard_left_nothing,
    dashboard_connections,
    tap_queues,
)
from tests.support.tap_socket import is_running, open_tap, receive_until, run_async, session_cookie
from tests.support.waiting import eventually


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


@pytest.fixture
def database_url(django_db_setup: None, django_db_blocker) -> str:
    from django.db import connection

    with django_db_blocker.unblock():
        return database_url_for(connection.settings_dict)


class ServeCommand(LiveDashboard):
    """`manage.py serve`, which checks the broker, migrates and then replaces itself with
    daphne: the signal reaches daphne under the same process id."""

    def argv(self) -> list[str]:
        return [sys.executable, "manage.py", "serve", "--port", str(self.port)]


def stop_with(process: subprocess.Popen, sig: signal.Signals) -> int:
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
def test_stopped_by_a_signal_it_restores_tracing_and_leaves_nothing_on_the_broker(
    server: type[LiveDashboard],
    sig: signal.Signals,
    database_url: str,
    watcher,
    scratch_vhost: str,
    management_client: ManagementClient,
) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.queue_declare("work")
    dashboard = server(database_url=database_url).start()
    assert dashboard.process is not None
    process = dashboard.process

    async def watch_then_stop() -> int:
        cookie = session_cookie(watcher)
        async with open_tap(dashboard.url, cookie, vhost=scratch_vhost, mode="firehose") as ws:
            status = (await receive_until(ws, is_running))[-1]["status"]
            assert status["mode"] == "firehose"
            # A publisher's connection too, besides the tap's.
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
            return await asyncio.to_thread(stop_with, process, sig)

    try:
        assert run_async(watch_then_stop) == 0, dashboard.output()
    finally:
        dashboard.stop()
    assert_the_dashboard_left_nothing(management_client, scratch_vhost)
