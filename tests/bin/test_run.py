"""`bin/run` on a machine whose local RabbitMQ is down, or up without its management plugin.

Each test owns a RabbitMQ node of its own (`tests/support/own_broker.py`, with an
enabled-plugins file listing no plugin), points `bin/run` at it through the environment, and
stops it at the end: the machine's shared node is never stopped or changed.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import free_port, start_first_run, wait_for_port
from tests.support.own_broker import OwnNode


@pytest.fixture
def own_node() -> Iterator[OwnNode]:
    """A node that is not running yet, configured with no plugins at all."""
    node = OwnNode(plugins=(), prefix="flows-run")
    try:
        yield node
    finally:
        node.delete()  # stops this node only, if it runs


@pytest.fixture
def run_dashboard(tmp_path: Path) -> Iterator:
    """Start `bin/run` against a node; yields a function returning (base URL, log path)."""
    processes: list[subprocess.Popen] = []

    def start(node: OwnNode) -> tuple[str, Path]:
        port = free_port()
        # With Redis here, bin/run runs the tap in a process of its own: on a control channel
        # of this test's, so no other dashboard on this machine's Redis hears of it.
        env = {**node.env, "FLOWS_TAP_CONTROL_CHANNEL": f"flows-tap-control-{tmp_path.name}"}
        process, log = start_first_run(["bin/run", "--port", str(port)], tmp_path, **env)
        processes.append(process)
        try:
            wait_for_port(port, timeout=150, process=process)
        except RuntimeError as error:
            raise AssertionError(log.read_text()) from error
        return f"http://127.0.0.1:{port}", log

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def assert_serves_the_node(base_url: str, log: Path, node: OwnNode) -> None:
    output = log.read_text()
    link = re.search(rf"({re.escape(base_url)}/accounts/link/[\w-]+/)", output)
    assert link, output
    with httpx.Client(follow_redirects=True, timeout=10) as client:
        overview = client.get(link.group(1))
    assert overview.status_code == 200
    assert str(overview.url) == f"{base_url}/"
    # The overview reads the management API of this node, not the machine's shared one.
    assert f'data-testid="node-name">{node.name}<' in overview.text


def test_bin_run_enables_the_management_plugin_of_a_running_local_node(own_node, run_dashboard):
    own_node.start()
    assert not own_node.plugin_enabled()
    assert not own_node.api_answers()

    base_url, log = run_dashboard(own_node)

    output = log.read_text()
    assert "Enabling the RabbitMQ management plugin on" in output
    # A local Redis answers (bin/test makes sure): the tap runs off the web process's GIL.
    assert "The tap runs in its own process" in output, output
    assert "redis://127.0.0.1:6379/1" in output
    assert own_node.plugin_enabled()
    assert_serves_the_node(base_url, log, own_node)


def test_bin_run_starts_a_local_node_that_is_down_with_its_management_plugin(
    own_node, run_dashboard
):
    assert not own_node.api_answers()

    base_url, log = run_dashboard(own_node)

    output = log.read_text()
    assert f"Starting {own_node.name}" in output
    assert own_node.plugin_enabled()
    # Enabled in the node's own plugins file, the one it reads at boot.
    assert "rabbitmq_management" in (own_node.directory / "enabled_plugins").read_text()
    assert_serves_the_node(base_url, log, own_node)
