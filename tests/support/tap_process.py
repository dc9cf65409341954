"""`manage.py tap`, the tap as its own process, started for a test and stopped after it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from tests.support.live_server import REPO_ROOT, stop_process
from tests.support.waiting import StopWaiting, eventually

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of processes that serve as one dashboard through Redis (web workers
    and a `manage.py tap`): the test database, a control channel of their own, and taps
    that stop half a second after their last viewer; plus `settings`."""
    return {
        "DATABASE_URL": database_url,
        "CHANNEL_LAYER_URL": REDIS_URL,
        "FLOWS_TAP_CONTROL_CHANNEL": f"flows-tap-control-test-{uuid.uuid4().hex[:8]}",
        "FLOWS_TAP_STOP_DELAY": "0.5",
        **settings,
    }


class TapProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.log = tempfile.NamedTemporaryFile(prefix="tap-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "tap"],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        eventually(
            self._ready,
            what="`manage.py tap` ready",
            timeout=60,  # Django start-up on a loaded CI machine
            interval=0.1,
        )

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise StopWaiting(f"exited with {self.process.returncode}: {self.output()}")
        assert "tap process ready" in self.output(), self.output()
        return True

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process, timeout=20)
        self.log.close()
