"""RabbitMQ nodes the tests own: started, stopped, restarted, killed and clustered at will.

Tests never stop, restart or cluster the machine's shared node (`rabbit@localhost`): a test
that needs a broker to misbehave starts nodes of its own, each with its own name, free ports
(AMQP, management, Erlang distribution), config file, enabled-plugins file and data and log
directories, and deletes them at the end. The machine's `/etc/rabbitmq/rabbitmq.conf` pins
the shared node's listener, which overrides `RABBITMQ_NODE_PORT`: hence a config file per
node. The Debian wrapper runs the server (and `rabbitmqctl`) as the `rabbitmq` user, which
must own the node's directory and cannot enter root's private pytest directories: hence
`tempfile.mkdtemp` and the `chown`.

A node starts in about 7 s here (CPU-bound: starting nodes side by side on two cores gains
little), a three-node cluster in about 20 s: share them between the tests of a module or session
(`tests/faults/conftest.py`). A clean stop costs 6-7 s more: `delete()` kills instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support.live_server import free_port
from tests.support.processes import alive
from tests.support.waiting import eventually

START_TIMEOUT_S = 90
# The user every own node knows (RabbitMQ's default; it may only connect from loopback).
USER, PASSWORD = "guest", "guest"


def run_tool(argv: Sequence[str], env: dict[str, str], *, timeout: float = 90) -> str:
    """Run a RabbitMQ CLI tool; fail with its output if it fails."""
    done = subprocess.run(
        list(argv), env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout


class OwnNode:
    """One RabbitMQ node of the tests' own, on free ports, with its own data directory.

    `plugins` is what its enabled-plugins file lists (the management plugin by default).
    The node keeps its ports and data across `stop()`/`start()`, as a restarted broker does.
    """

    def __init__(
        self, *, plugins: Sequence[str] = ("rabbitmq_management",), prefix: str = "flows-own"
    ) -> None:
        # Not pytest's tmp_path: see the module docstring.
        self.directory = Path(tempfile.mkdtemp(prefix=f"{prefix}-node-"))
        self.amqp_port, self.api_port, self.dist_port = free_port(), free_port(), free_port()
        self.name = f"{prefix}-{uuid.uuid4().hex[:8]}@localhost"
        self.config_file.write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.amqp_port}\n"
            f"management.tcp.port = {self.api_port}\n"
            "management.tcp.ip = 127.0.0.1\n"
        )
        (self.directory / "enabled_plugins").write_text(f"[{','.join(plugins)}].\n")
        for path in [self.directory, *self.directory.iterdir()]:
            shutil.chown(path, "rabbitmq")

    # --- where it is ------------------------------------------------------------------------

    @property
    def config_file(self) -> Path:
        return self.directory / "rabbitmq.conf"

    @property
    def pid_file(self) -> Path:
        return self.directory / "pid"

    @property
    def amqp_url(self) -> str:
        return f"amqp://{USER}:{PASSWORD}@127.0.0.1:{self.amqp_port}/"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/"

    @property
    def env(self) -> dict[str, str]:
        """What points RabbitMQ's tools at this node, and the dashboard at its APIs."""
        return {
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.config_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "AMQP_URL": self.amqp_url,
            "RABBITMQ_API_URL": self.api_url,
        }

    @property
    def tool_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    # --- its life ---------------------------------------------------------------------------

    def launch(self) -> None:
        """Start the server in the background; `wait_until_booted()` waits for it."""
        self.pid_file.unlink(missing_ok=True)
        run_tool(["rabbitmq-server", "-detached"], self.tool_env)

    def wait_until_booted(self) -> None:
        # `wait` waits for the pid file, then for the node to finish booting (what
        # `await_startup` waits for, which fails on a node not yet known).
        self.ctl("wait", str(self.pid_file), "--timeout", str(START_TIMEOUT_S))

    def start(self) -> OwnNode:
        """Start the node (again: same ports, same data) and return once it has booted."""
        self.launch()
        self.wait_until_booted()
        return self

    def started_and_answering(self) -> OwnNode:
        """`start()`, and wait for the management API too (it may lag the boot a little)."""
        self.start()
        self.wait_for_api()
        return self

    def stop(self) -> None:
        """Stop the node cleanly (`rabbitmqctl stop`): clients get a connection.close."""
        pid = self.pid()
        self.ctl("stop")
        # `rabbitmqctl stop PIDFILE` waits for the process too, but polls slowly (seconds).
        eventually(lambda: not alive(pid), what=f"{self.name} exited", timeout=60, interval=0.05)

    def kill(self) -> None:
        """Crash the node: `kill -9` of its `beam.smp` (clients see their sockets reset)."""
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        eventually(lambda: not alive(pid), what=f"beam.smp {pid} gone", interval=0.05)

    def pid(self) -> int:
        """The pid of the node's `beam.smp` (from its pid file)."""
        return int(self.pid_file.read_text().strip())

    def stop_quietly(self) -> None:
        """The clean-up path: stop the node if it runs, whatever state it is in."""
        subprocess.run(
            ["rabbitmqctl", "-n", self.name, "stop"],
            env=self.tool_env,
            capture_output=True,
            timeout=60,
        )
        if self.pid_file.exists():
            text = self.pid_file.read_text().strip()
            if text.isdigit() and alive(int(text)):
                os.kill(int(text), signal.SIGKILL)

    def delete(self) -> None:
        """The end of the node: killed (a clean stop of a node whose data goes next only costs
        time), then its directory removed."""
        if not self._killed_if_running():
            self.stop_quietly()  # no pid file: it may be booting without one yet
        shutil.rmtree(self.directory, ignore_errors=True)

    def _killed_if_running(self) -> bool:
        """Kill the node if its pid file names a live process; False if there is no pid file."""
        try:
            text = self.pid_file.read_text().strip()
        except FileNotFoundError:
            return False
        if not text.isdigit():
            return False
        if alive(int(text)):
            self.kill()
        return True

    def join_on_boot(self, seed: OwnNode) -> None:
        """Boot into `seed`'s cluster (classic config peer discovery) instead of on its own.

        What `stop_app`, `join_cluster`, `start_app` after a boot do, without booting the
        node's applications twice (about 5 s of CPU per node here). Only on a first boot, with
        an empty data directory: that is when a node looks for a cluster to join."""
        with self.config_file.open("a") as config:
            config.write(
                "cluster_formation.peer_discovery_backend = classic_config\n"
                f"cluster_formation.classic_config.nodes.1 = {seed.name}\n"
                f"cluster_formation.classic_config.nodes.2 = {self.name}\n"
            )

    # --- half of it down -----------------------------------------------------------------

    def stop_management(self) -> None:
        """The management API down, AMQP up: its application stopped (its listener with it)."""
        self.eval("application:stop(rabbitmq_management).")

    def start_management(self) -> None:
        self.eval("application:start(rabbitmq_management).")
        self.wait_for_api()

    def stop_amqp(self) -> None:
        """AMQP down, the management API up: the listener stopped, and (as a stopped listener
        keeps the connections it accepted) every client connection closed."""
        self.eval(f"rabbit_networking:stop_tcp_listener({self._listener}).")
        self.eval(
            '[rabbit_networking:close_connection(P, "flows test: AMQP down") '
            "|| P <- rabbit_networking:connections()], ok."
        )

    def start_amqp(self) -> None:
        self.eval(f"rabbit_networking:start_tcp_listener({self._listener}, 10).")

    def raise_memory_alarm(self) -> None:
        """A memory alarm, as when the node crosses its high watermark: publishes blocked.

        `set_alarm` only notifies the alarm handler; asking it for the alarms right after
        returns once it has handled (and passed on) the alarm."""
        self.eval(
            "rabbit_alarm:set_alarm({{resource_limit, memory, node()}, []}), "
            "rabbit_alarm:get_alarms()."
        )

    def clear_memory_alarm(self) -> None:
        self.eval(
            "rabbit_alarm:clear_alarm({resource_limit, memory, node()}), rabbit_alarm:get_alarms()."
        )

    @property
    def _listener(self) -> str:
        return f'{{"127.0.0.1", {self.amqp_port}}}'

    # --- asking it --------------------------------------------------------------------------

    def ctl(self, *args: str, timeout: float = 120) -> str:
        return run_tool(["rabbitmqctl", "-n", self.name, *args], self.tool_env, timeout=timeout)

    def eval(self, expression: str) -> str:
        """Run an Erlang expression on the node (`rabbitmqctl eval`)."""
        return self.ctl("eval", expression).strip()

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        return httpx.request(
            method, f"{self.api_url}api/{path}", auth=(USER, PASSWORD), timeout=10, **kwargs
        )

    def api_answers(self) -> bool:
        try:
            return self.api("GET", "overview").status_code == 200
        except httpx.TransportError:
            return False

    def wait_for_api(self) -> None:
        eventually(
            self.api_answers, what=f"the management API of {self.name}", timeout=60, interval=0.1
        )

    def amqp_accepts(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.amqp_port), timeout=1):
                return True
        except OSError:
            return False

    def plugin_enabled(self, plugin: str = "rabbitmq_management") -> bool:
        answer = subprocess.run(
            ["rabbitmq-plugins", "-n", self.name, "-q", "is_enabled", plugin],
            env=self.tool_env,
            capture_output=True,
        )
        return answer.returncode == 0

    def add_vhost(self, name: str) -> str:
        """A vhost on this node that the default user may do everything on."""
        self.api("PUT", f"vhosts/{_quoted(name)}").raise_for_status()
        self.api(
            "PUT",
            f"permissions/{_quoted(name)}/{USER}",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()
        return name


class OwnCluster:
    """Three own nodes joined into one cluster (the first is the seed)."""

    def __init__(self, size: int = 3) -> None:
        self.nodes = [OwnNode(prefix="flows-cluster") for _ in range(size)]

    def start(self) -> OwnCluster:
        # The seed first, on its own; then the others side by side, each joining it as it
        # boots (a node finds a seed only once the seed runs; it would boot alone otherwise).
        seed, *others = self.nodes
        seed.start()
        for node in others:
            node.join_on_boot(seed)
            node.launch()
        for node in others:
            node.wait_until_booted()
        for node in self.nodes:
            node.wait_for_api()
        return self  # that all of them joined is the first test of tests/faults/test_cluster.py

    @property
    def amqp_url(self) -> str:
        """Every node's AMQP address, comma-separated, in order: the dashboard tries each."""
        return ",".join(node.amqp_url for node in self.nodes)

    def running_nodes(self) -> list[str]:
        overview = self.nodes[-1].api("GET", "nodes?columns=name,running").json()
        return sorted(item["name"] for item in overview if item.get("running"))

    def delete(self) -> None:
        _each(OwnNode.delete, self.nodes)


def _each(action: Callable[[OwnNode], None], nodes: Sequence[OwnNode]) -> None:
    """`action` on each node at once (each CLI call is mostly waiting), failing if any fails."""
    with ThreadPoolExecutor(max_workers=len(nodes) or 1) as pool:
        for future in [pool.submit(action, node) for node in nodes]:
            future.result()


def _quoted(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


__all__ = ["OwnCluster", "OwnNode"]
