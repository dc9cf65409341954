"""`manage.py serve` with a Redis channel layer: the supervisor of daphne and `manage.py tap`.

One serve, watched through `/ws/tap/` from start to end: the tap process it started feeds the
viewer; killed with -9, it is started again, the same socket is fed again and told of the
gap, and nothing of the dead process stays on the broker; SIGTERM to serve then stops both
children, leaving nothing on the broker either.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live_server import REPO_ROOT, database_url_for, free_port, wait_for_port
from tests.support.processes import alive, children_of
from tests.support.tap_harness import amqp_channel, assert_the_dashboard_left_nothing, tap_queues
from tests.support.tap_process import REDIS_URL
from tests.support.tap_socket import (
    is_batch_with_events,
    is_running,
    open_tap,
    receive_until,
    run_async,
    session_cookie,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.usefixtures("transactional_db")


class Serve:
    def __init__(self, process: subprocess.Popen, log: Path, port: int) -> None:
        self.process, self.log, self.port = process, log, port
        self.url = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self, child: str) -> list[int]:
        """The pids of the children called `child` ("web", "tap") serve said it started."""
        pattern = rf"Started the {child} process \(.*pid (\d+)\)"
        return [int(pid) for pid in re.findall(pattern, self.output())]


@pytest.fixture(params=[1, 2], ids=["one consumer", "two consumers"])
def consumers(request) -> int:
    """FLOWS_TAP_CONSUMERS: the tap's own consumer alone, or with a consumer process."""
    return request.param


@pytest.fixture
def serve(
    django_db_setup, django_db_blocker, scratch_vhost: str, tmp_path: Path, consumers: int
) -> Iterator[Serve]:
    from django.db import connection

    with django_db_blocker.unblock():
        database_url = database_url_for(connection.settings_dict)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
        "CHANNEL_LAYER_URL": REDIS_URL,
        "FLOWS_TAP_CONTROL_CHANNEL": f"flows-tap-control-test-{uuid.uuid4().hex[:8]}",
        "FLOWS_TAP_STOP_DELAY": "0.5",
        # The administrator allowed the firehose here: tracing is switched, and put back.
        "FLOWS_FIREHOSE_VHOSTS": scratch_vhost,
        "FLOWS_TAP_CONSUMERS": str(consumers),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    served = Serve(process, log, port)
    try:
        wait_for_port(port, timeout=60, process=process)
        eventually(lambda: "tap process ready" in served.output(), what="the tap process ready")
        yield served
    finally:
        if process.poll() is None:
            process.kill()  # its children get SIGTERM (PR_SET_PDEATHSIG)
            process.wait()


def test_serve_runs_the_tap_process_restarts_it_after_kill_9_and_stops_it_on_sigterm(
    serve: Serve, scratch_vhost: str, user, management_client, consumers: int
) -> None:
    assert "The tap runs in its own process" in serve.output()
    cookie = session_cookie(user)

    def publish(body: bytes) -> None:
        with amqp_channel(scratch_vhost) as channel:
            channel.basic_publish("", "work", body)

    def restarted(first_process: str):
        def running_elsewhere_and_told(message: dict) -> bool:
            status = message.get("status") or {}
            gaps = [gap["message"] for gap in status.get("gaps", [])]
            return (
                is_running(message)
                and status["process"] != first_process
                and any(gap.startswith("the tap process restarted") for gap in gaps)
            )

        return running_elsewhere_and_told

    async def scenario() -> int:
        async with open_tap(serve.url, cookie, vhost=scratch_vhost) as ws:
            first = (await receive_until(ws, is_running))[-1]["status"]
            assert first["mode"] == "firehose"
            await asyncio.to_thread(publish, b"before")
            [event] = (await receive_until(ws, is_batch_with_events))[-1]["events"]
            assert event["body"]["preview"] == "before"
            old_queues = tap_queues(management_client, scratch_vhost)
            assert len(old_queues) == 2, old_queues  # the tap's queue and its overflow queue

            [tap_pid] = serve.pids("tap")
            consumer_processes = children_of(tap_pid)
            assert len(consumer_processes) == consumers - 1
            os.kill(tap_pid, signal.SIGKILL)
            # The same socket: the new tap process takes it over and says what was lost.
            now = (await receive_until(ws, restarted(first["process"])))[-1]["status"]
            await asyncio.to_thread(publish, b"after the restart")
            [event] = (await receive_until(ws, is_batch_with_events))[-1]["events"]
            assert event["body"]["preview"] == "after the restart"
            # Only the new tap's queues: the dead process's went with its connection (and
            # with its consumer processes, which end when it does).
            assert sorted(tap_queues(management_client, scratch_vhost)) == sorted(
                [now["queue"], now["queue"] + ".overflow"]
            )
            assert all(not alive(pid) for pid in consumer_processes)
            await receive_until(
                ws,
                lambda m: is_running(m) and m["status"]["consumers"]["running"] == consumers,
            )

            serve.process.send_signal(signal.SIGTERM)
            return await asyncio.to_thread(serve.process.wait, 60)

    with amqp_channel(scratch_vhost) as channel:
        channel.queue_declare("work")
    assert run_async(scenario) == 0, serve.output()

    output = serve.output()
    assert "The tap process ended (killed by SIGKILL); restarting it in" in output
    assert len(serve.pids("tap")) == 2, output
    assert "tap process stopped" in output  # the new one, through its SIGTERM path
    assert all(not alive(pid) for pid in serve.pids("tap") + serve.pids("web")), output
    # Tracing back off (the new process restored what the dead one left, then its own),
    # no queue, lease or connection of either tap process left.
    assert_the_dashboard_left_nothing(management_client, scratch_vhost)
