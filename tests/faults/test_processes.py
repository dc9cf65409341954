"""The dashboard's own processes killed or restarted, on the session's own node: the tap
process (`manage.py tap`) killed with -9, and the web process (daphne) stopped or killed and
started again.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator

import pytest

from flows.models import TapFirehoseLease
from tests.support.live_server import LiveDashboard, database_url_for
from tests.support.own_broker import OwnNode
from tests.support.tap_process import REDIS_URL, TapProcess
from tests.support.tap_socket import is_running, open_tap, receive_until, run_async, session_cookie
from tests.support.waiting import eventually

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("transactional_db")]


def node_env(node: OwnNode, vhost: str) -> dict[str, str]:
    """A dashboard process on `node`, allowed the firehose on `vhost` by configuration."""
    return {
        "AMQP_URL": node.amqp_url,
        "RABBITMQ_API_URL": node.api_url,
        "FLOWS_FIREHOSE_VHOSTS": vhost,
        "FLOWS_TAP_STOP_DELAY": "0.5",
    }


def dashboard_objects(node: OwnNode, vhost: str) -> dict[str, list[str]]:
    """The dashboard's queues and connections on `vhost`, as the node's management API lists
    them (a closed connection stays listed a moment longer)."""
    queues = node.api("GET", f"queues/{vhost}?columns=name").json()
    connections = node.api("GET", f"vhosts/{vhost}/connections").json()
    return {
        "queues": [q["name"] for q in queues if q["name"].startswith("flows-dashboard.")],
        "connections": [
            c["client_properties"].get("connection_name", "")
            for c in connections
            if c["client_properties"].get("connection_name", "").startswith("flows-dashboard")
        ],
    }


def tracing(node: OwnNode, vhost: str) -> bool:
    return node.api("GET", f"vhosts/{vhost}").json()["tracing"]


def watch_firehose_until(dashboard: LiveDashboard, cookie: str, vhost: str, then: Callable):
    """Watch `vhost` (the firehose, as configured); once the tap runs, `then()` in the socket."""

    async def scenario() -> None:
        async with open_tap(dashboard.url, cookie, vhost=vhost) as ws:
            messages = await receive_until(ws, is_running)
            assert messages[-1]["status"]["mode"] == "firehose"
            then()

    run_async(scenario)


@pytest.fixture
def tap_process_on_node(
    start_dashboard, node_vhost: str, own_node: OwnNode, django_db_blocker
) -> Iterator[tuple[LiveDashboard, TapProcess]]:
    """A Redis-backed dashboard on `own_node`, and `manage.py tap` beside it."""
    from django.db import connection

    with django_db_blocker.unblock():
        database_url = database_url_for(connection.settings_dict)
    env = {
        **node_env(own_node, node_vhost),
        "CHANNEL_LAYER_URL": REDIS_URL,
        "FLOWS_TAP_CONTROL_CHANNEL": f"flows-tap-control-test-{uuid.uuid4().hex[:8]}",
    }
    tap = TapProcess({**env, "DATABASE_URL": database_url})
    try:
        yield start_dashboard(**env), tap
    finally:
        tap.stop()


def test_the_tap_process_killed_with_9_leaves_nothing_on_the_broker(
    tap_process_on_node: tuple[LiveDashboard, TapProcess], node_vhost: str, own_node: OwnNode, user
) -> None:
    dashboard, tap = tap_process_on_node

    def kill_the_tap() -> None:
        held = dashboard_objects(own_node, node_vhost)
        assert len(held["queues"]) == 2, held  # the tap's queue and its overflow queue
        os.kill(tap.process.pid, signal.SIGKILL)
        tap.process.wait()

    watch_firehose_until(dashboard, session_cookie(user), node_vhost, kill_the_tap)
    # Exclusive queues die with their connection, and the broker closes that with the process.
    eventually(
        lambda: dashboard_objects(own_node, node_vhost) == {"queues": [], "connections": []},
        what="nothing of the killed tap's left on the node",
        interval=0.2,
    )
    # Tracing it could not switch off is put back by the next tap process, as it starts.
    assert tracing(own_node, node_vhost) is True
    TapProcess(tap.env).stop()
    assert tracing(own_node, node_vhost) is False
    assert not TapFirehoseLease.objects.filter(vhost=node_vhost).exists()


@pytest.mark.parametrize(
    ("how", "tracing_before"),
    [("SIGTERM", False), ("SIGKILL", False), ("SIGKILL", True)],
)
def test_a_restarted_dashboard_has_tracing_back_as_it_found_it(
    start_dashboard, node_vhost: str, own_node: OwnNode, user, how: str, tracing_before: bool
) -> None:
    own_node.api("PUT", f"vhosts/{node_vhost}", json={"tracing": tracing_before})
    dashboard = start_dashboard(**node_env(own_node, node_vhost))
    cookie = session_cookie(user)

    def stop_the_dashboard() -> None:
        assert tracing(own_node, node_vhost) is True
        assert dashboard.process is not None
        dashboard.process.send_signal(getattr(signal, how))
        dashboard.process.wait(timeout=30)

    watch_firehose_until(dashboard, cookie, node_vhost, stop_the_dashboard)
    if how == "SIGKILL":  # it could not clean up: tracing still on, its lease left behind
        assert tracing(own_node, node_vhost) is True
        assert TapFirehoseLease.objects.filter(vhost=node_vhost).exists()
    start_dashboard(**node_env(own_node, node_vhost))  # and nobody opens a page
    eventually(
        lambda: tracing(own_node, node_vhost) is tracing_before,
        what=f"tracing {'on' if tracing_before else 'off'} again",
        interval=0.2,
    )
    eventually(
        lambda: not TapFirehoseLease.objects.filter(vhost=node_vhost).exists(),
        what="no firehose lease left",
        interval=0.2,
    )
