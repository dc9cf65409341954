"""A real dashboard served by daphne in a subprocess, for browser and websocket tests.

The subprocess is the production entry point (`daphne dashboard.asgi:application`),
configured through the environment like a deployment, and reading the same test
database as the test process. Data a test creates must be committed to be seen:
tests that use it need the `transactional_db` fixture.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.waiting import StopWaiting, eventually

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Wait until something listens on `port`; fail at once if `process` exits first."""

    def listening() -> bool:
        if process is not None and process.poll() is not None:
            raise StopWaiting(f"server exited with {process.returncode} before listening")
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True

    eventually(
        listening, what=f"a server listening on 127.0.0.1:{port}", timeout=timeout, interval=0.1
    )


def start_first_run(argv: list[str], tmp_path: Path, **env: str) -> tuple[subprocess.Popen, Path]:
    """Start a command that serves the dashboard (`manage.py serve`, `bin/run`) as on a first
    start: a state directory of its own (its own database, secret key, no users yet).

    Returns the process and the file its output goes to.
    """
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env={
                **os.environ,
                "FLOWS_STATE_DIR": str(tmp_path / "state"),
                "PYTHONUNBUFFERED": "1",
                "DATABASE_URL": "",
                **env,
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return process, log


class LiveDashboard:
    """One daphne process serving the dashboard on a free port."""

    def __init__(self, *, database_url: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DJANGO_DEBUG": "false",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.log = tempfile.NamedTemporaryFile(prefix="dashboard-", suffix=".log", delete=False)  # noqa: SIM115
        self.process: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        """The command that serves: daphne, as a deployment runs it."""
        return [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            "dashboard.asgi:application",
        ]

    def start(self) -> LiveDashboard:
        self.process = subprocess.Popen(
            self.argv(),
            cwd=REPO_ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, timeout=60, process=self.process)
        return self

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=10)
        self.log.close()


def stop_process(process: subprocess.Popen, *, timeout: float) -> None:
    """Ask a process still running to end (SIGTERM, its shutdown path), kill it after `timeout`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def database_url_for(settings_dict: dict) -> str:
    """A DATABASE_URL naming the test database the test process uses."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    if engine.endswith("postgresql"):
        user = settings_dict.get("USER") or ""
        password = settings_dict.get("PASSWORD") or ""
        credentials = f"{user}:{password}@" if user else ""
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{credentials}{host}:{port}/{settings_dict['NAME']}"
    raise RuntimeError(f"no live-server support for database engine {engine}")
