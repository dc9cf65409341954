"""`manage.py tap` as its own process behind Redis: viewers join over the channel layer,
SIGTERM and SIGINT leave nothing behind, and `kill -9` nothing that cannot be put back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from flows.models import TapFirehoseLease
from tests.support.live_server import REPO_ROOT, LiveDashboard, database_url_for
from tests.support.tap_harness import amqp_channel, assert_the_dashboard_left_nothing, tap_queues
from tests.support.tap_process import TapProcess, redis_env
from tests.support.tap_socket import (
    is_batch_with_events,
    is_running,
    open_tap,
    receive_until,
    run_async,
    session_cookie,
    watch,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture
def redis_setup(django_db_setup, django_db_blocker, scratch_vhost: str) -> Iterator[dict]:
    """A Redis-backed dashboard and a `manage.py tap` beside it, sharing a control channel."""
    from django.db import connection

    with django_db_blocker.unblock():
        database_url = database_url_for(connection.settings_dict)
    # The administrator allowed the firehose on this vhost by configuration.
    env = redis_env(database_url, FLOWS_FIREHOSE_VHOSTS=scratch_vhost)
    setup = {"tap": TapProcess(env), "env": env}
    setup["dashboard"] = LiveDashboard(database_url=database_url, env=env).start()
    yield setup
    setup["dashboard"].stop()
    setup["tap"].stop()  # a test may have replaced it


def test_the_tap_process_feeds_viewers_and_stops_after_the_last(
    redis_setup: dict, scratch_vhost: str, user, management_client
) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.queue_declare("work")
        messages = watch(
            redis_setup["dashboard"].url,
            session_cookie(user),
            vhost=scratch_vhost,
            # Firehose (configured for this vhost): the default exchange is covered.
            act=lambda: channel.basic_publish("", "work", b"through redis"),
        )
    [event] = messages[-1]["events"]
    assert event["source"] == "firehose"
    assert event["routed_queues"] == ["work"]
    assert event["body"]["preview"] == "through redis"
    eventually(
        lambda: not tap_queues(management_client, scratch_vhost),
        what="the tap's queues gone after the last viewer",
        interval=0.2,
    )
    eventually(
        lambda: management_client.vhost(scratch_vhost).tracing is False,
        what="tracing switched off again",
        interval=0.2,
    )
    assert redis_setup["tap"].process.poll() is None


def test_kill_9_leaves_no_queue_and_tracing_can_be_restored(
    redis_setup: dict, scratch_vhost: str, user, management_client
) -> None:
    dashboard, tap = redis_setup["dashboard"], redis_setup["tap"]
    cookie = session_cookie(user)

    async def watch_until_killed() -> None:
        async with open_tap(dashboard.url, cookie, vhost=scratch_vhost) as ws:
            messages = await receive_until(ws, is_running)
            assert messages[-1]["status"]["mode"] == "firehose"
            assert len(tap_queues(management_client, scratch_vhost)) == 2
            assert management_client.vhost(scratch_vhost).tracing is True
            os.kill(tap.process.pid, signal.SIGKILL)
            tap.process.wait()

    run_async(watch_until_killed)
    # The exclusive queues die with the killed process's connection.
    eventually(
        lambda: not tap_queues(management_client, scratch_vhost),
        what="the killed tap's queues gone",
        interval=0.2,
    )
    # Tracing is still on, and the lease says it was off before.
    assert management_client.vhost(scratch_vhost).tracing is True
    assert TapFirehoseLease.objects.filter(vhost=scratch_vhost, tracing_was_on=False).exists()
    restore = subprocess.run(
        [sys.executable, "manage.py", "tap", "--restore-tracing"],
        cwd=REPO_ROOT,
        env={k: v for k, v in tap.env.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert restore.returncode == 0, restore.stderr
    assert scratch_vhost in restore.stdout
    assert management_client.vhost(scratch_vhost).tracing is False
    assert not TapFirehoseLease.objects.filter(vhost=scratch_vhost).exists()


def test_viewers_join_a_restarted_tap_process_by_themselves(
    redis_setup: dict, scratch_vhost: str, user
) -> None:
    """A new tap process says it started (`tap.process_started`): its viewers join it, on the
    same socket (their heartbeats would too, within 5 s), and are told of the gap."""
    dashboard = redis_setup["dashboard"]
    cookie = session_cookie(user)
    with amqp_channel(scratch_vhost) as channel:
        channel.queue_declare("work")

        async def scenario() -> list[dict]:
            async with open_tap(dashboard.url, cookie, vhost=scratch_vhost) as ws:
                first = (await receive_until(ws, is_running))[-1]["status"]["run"]
                redis_setup["tap"].stop()
                redis_setup["tap"] = TapProcess(redis_setup["env"])
                back = await receive_until(
                    ws, lambda m: is_running(m) and m["status"]["run"] != first
                )
                [gap] = back[-1]["status"]["gaps"]
                assert gap["message"].startswith("the tap process restarted"), gap
                channel.basic_publish("", "work", b"after the restart")
                return await receive_until(ws, is_batch_with_events)

        messages = run_async(scenario)
    [event] = messages[-1]["events"]
    assert event["body"]["preview"] == "after the restart"
    assert messages[-1]["counts"]["tap"]["received"] == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopped_by_a_signal_it_restores_tracing_and_leaves_nothing_on_the_broker(
    sig: signal.Signals, redis_setup: dict, scratch_vhost: str, user, management_client
) -> None:
    dashboard, tap = redis_setup["dashboard"], redis_setup["tap"]
    cookie = session_cookie(user)

    async def watch_then_stop() -> int:
        async with open_tap(dashboard.url, cookie, vhost=scratch_vhost, mode="firehose") as ws:
            messages = await receive_until(ws, is_running)
            assert messages[-1]["status"]["mode"] == "firehose"
            assert management_client.vhost(scratch_vhost).tracing is True
            assert len(tap_queues(management_client, scratch_vhost)) == 2
            tap.process.send_signal(sig)
            return await asyncio.to_thread(tap.process.wait, 60)

    assert run_async(watch_then_stop) == 0, tap.output()
    assert "tap process stopped" in tap.output()
    assert_the_dashboard_left_nothing(management_client, scratch_vhost)
