"""`bin/run` on a machine whose local RabbitMQ is down, or up without its management plugin.

Each test owns a RabbitMQ node of its own (own name, ports, config and enabled-plugins file
listing no plugin), points `bin/run` at it through the environment, and stops it at the end:
the machine's shared node is never stopped or changed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import free_port, start_first_run, wait_for_port


@dataclass(frozen=True)
class OwnNode:
    name: str
    directory: Path
    amqp_port: int
    api_port: int
    env: dict[str, str]  # what points RabbitMQ's tools and the dashboard at this node

    @property
    def tool_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def start(self) -> None:
        subprocess.run(["rabbitmq-server", "-detached"], env=self.tool_env, check=True)
        # `wait` first waits for the pid file: await_startup fails on a node not yet known.
        pid_file = str(self.directory / "pid")
        subprocess.run(
            ["rabbitmqctl", "-n", self.name, "wait", pid_file, "--timeout", "60"],
            env=self.tool_env,
            check=True,
            capture_output=True,
        )

    def plugin_enabled(self) -> bool:
        answer = subprocess.run(
            ["rabbitmq-plugins", "-n", self.name, "-q", "is_enabled", "rabbitmq_management"],
            env=self.tool_env,
            capture_output=True,
        )
        return answer.returncode == 0

    def api_answers(self) -> bool:
        try:
            httpx.get(f"http://127.0.0.1:{self.api_port}/api/overview", timeout=3)
        except httpx.TransportError:
            return False
        return True


@pytest.fixture
def own_node() -> Iterator[OwnNode]:
    """A node that is not running yet, configured with no plugins at all."""
    # Not pytest's tmp_path: the Debian wrapper runs the node as the `rabbitmq` user,
    # which cannot enter root's private pytest directories.
    directory = Path(tempfile.mkdtemp(prefix="flows-own-node-"))
    amqp_port, api_port, dist_port = free_port(), free_port(), free_port()
    # /etc/rabbitmq/rabbitmq.conf pins the shared node's listener, which overrides
    # RABBITMQ_NODE_PORT: the node needs a config file of its own.
    (directory / "rabbitmq.conf").write_text(
        f"listeners.tcp.local = 127.0.0.1:{amqp_port}\n"
        f"management.tcp.port = {api_port}\n"
        "management.tcp.ip = 127.0.0.1\n"
    )
    (directory / "enabled_plugins").write_text("[].\n")
    shutil.chown(directory, "rabbitmq")
    for path in directory.iterdir():
        shutil.chown(path, "rabbitmq")
    name = f"flows-run-{uuid.uuid4().hex[:8]}@localhost"
    env = {
        "RABBITMQ_NODENAME": name,
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
        "RABBITMQ_LOG_BASE": str(directory / "log"),
        "RABBITMQ_PID_FILE": str(directory / "pid"),
        "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{amqp_port}/",
        "RABBITMQ_API_URL": f"http://127.0.0.1:{api_port}/",
    }
    node = OwnNode(name, directory, amqp_port, api_port, env)
    try:
        yield node
    finally:
        # Stops this node only (it may not be running: then this fails quietly).
        subprocess.run(["rabbitmqctl", "-n", name, "stop"], env=node.tool_env, capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def run_dashboard(tmp_path: Path) -> Iterator:
    """Start `bin/run` against a node; yields a function returning (base URL, log path)."""
    processes: list[subprocess.Popen] = []

    def start(node: OwnNode) -> tuple[str, Path]:
        port = free_port()
        process, log = start_first_run(["bin/run", "--port", str(port)], tmp_path, **node.env)
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

    assert "Enabling the RabbitMQ management plugin on" in log.read_text()
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
