"""A tap's extra consumer processes (`flows.tap.consumer_process`): started, read, restarted.

The tap's own thread owns the pool: it starts it once its queue exists, calls `take()` each
round of its loop (the batches that arrived, in order of arrival; children that died are
started again, with a backoff), and stops it before the queue goes. One reader thread per
child turns its frames into items of one inbox, so the children never wait on the tap.

A child holds no state the tap needs: one that dies leaves its unacked deliveries to the
broker, which hands them to the other consumers (nothing lost; they come as redeliveries).
"""

from __future__ import annotations

import json
import logging
import queue
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from flows.tap.consumer_process import Config, read_frame
from flows.tap.events import TapEvent
from flows.tap.selection import Prefilter

LOGGER = logging.getLogger(__name__)

# Where `flows` is importable from, whatever the tap's working directory.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
RESTART_MIN_DELAY_S = 0.5
RESTART_MAX_DELAY_S = 10.0
# A child that ran this long before dying is restarted at once again (not a crash loop).
STABLE_AFTER_S = 30.0

Batch = tuple[list[TapEvent], int, int]  # (events, ignored_own, skipped)


class _Child:
    def __init__(self, index: int, config: Config, inbox: queue.SimpleQueue) -> None:
        self.index = index
        self.started_at = time.monotonic()
        self.ready = False
        self.prefilter_version = config.prefilter_version  # in force in the child
        self.error: str | None = None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flows.tap.consumer_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=SOURCE_ROOT,
            # Its log lines and tracebacks go where the tap's go.
            stderr=None,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write((config.to_json() + "\n").encode())
        self.process.stdin.flush()
        self._reader = threading.Thread(
            target=self._read,
            args=(inbox,),
            name=f"flows-tap-consumer-{index} reader",
            daemon=True,
        )
        self._reader.start()

    def _read(self, inbox: queue.SimpleQueue) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            while (frame := read_frame(stdout)) is not None:
                inbox.put((self, *frame))
        except Exception as exc:  # a torn frame: the child is as good as dead
            LOGGER.warning("tap consumer %d sent a bad frame: %r", self.index, exc)
            self.process.kill()
        finally:
            stdout.close()
        returncode = self.process.wait()
        self.close_input()
        inbox.put((self, "exited", returncode))

    def send_prefilter(self, prefilter: list[dict[str, str]] | None, version: int) -> None:
        update = {"prefilter": prefilter, "version": version}
        try:
            assert self.process.stdin is not None
            self.process.stdin.write((json.dumps(update) + "\n").encode())
            self.process.stdin.flush()
        except (OSError, ValueError):  # it died (its exit is on the way) or is stopping
            pass

    def close_input(self) -> None:
        """End of its stdin: it cancels, sends what it holds, and exits."""
        try:
            assert self.process.stdin is not None
            self.process.stdin.close()
        except OSError:
            pass

    def join(self, timeout: float) -> None:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout)


class ConsumerPool:
    """`count` consumer processes on `config.queue`, merged through one inbox."""

    def __init__(self, config: Config, count: int) -> None:
        self.config = config
        self.count = count
        self.restarts = 0
        self.merged = 0  # events its processes made (the tap's own consumer made the rest)
        self.last_error: str | None = None
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._children: dict[int, _Child] = {}
        self._due: dict[int, float] = {}  # index -> when to start it (again)
        self._delays: dict[int, float] = {}
        self._stopping = False
        self.prefilter: Prefilter | None = None
        self.prefilter_version = 0

    def start(self) -> None:
        for index in range(1, self.count + 1):
            self._start(index)

    def set_prefilter(self, prefilter: Prefilter | None) -> None:
        """On the tap's thread: the children rule out what `prefilter` does not want."""
        self.prefilter = prefilter
        self.prefilter_version += 1
        message = prefilter.as_message() if prefilter is not None else None
        # Children started later start with it.
        self.config = replace(
            self.config, prefilter=message, prefilter_version=self.prefilter_version
        )
        for child in self._children.values():
            child.send_prefilter(message, self.prefilter_version)

    def prefilter_applied(self) -> bool:
        """Every running child makes its events with the latest prefilter."""
        return all(
            child.prefilter_version == self.prefilter_version
            for child in self._children.values()
            if child.ready
        )

    def _start(self, index: int) -> None:
        config = replace(self.config, name=f"{self.config.name} {index + 1}")
        self._children[index] = _Child(index, config, self._inbox)
        self._due.pop(index, None)

    def pids(self) -> list[int]:
        return [child.process.pid for child in self._children.values()]

    @property
    def running(self) -> int:
        return sum(1 for child in self._children.values() if child.ready)

    def take(self) -> list[Batch]:
        """The batches that arrived since the last call, in order of arrival."""
        batches: list[Batch] = []
        while True:
            try:
                child, kind, payload = self._inbox.get_nowait()
            except queue.Empty:
                break
            if kind == "events":
                batches.append(payload)
                self.merged += len(payload[0])
            elif kind == "ready":
                child.ready = True
            elif kind == "prefilter":
                child.prefilter_version = payload
            elif kind == "error":
                child.error = self.last_error = str(payload)
                LOGGER.warning("tap consumer %d: %s", child.index, payload)
            elif kind == "exited":
                self._exited(child, payload)
        if not self._stopping:
            now = time.monotonic()
            for index, due in list(self._due.items()):
                if now >= due:
                    self.restarts += 1
                    self._start(index)
        return batches

    def _exited(self, child: _Child, returncode: int) -> None:
        if self._children.get(child.index) is not child:
            return
        del self._children[child.index]
        if self._stopping:
            return
        LOGGER.warning("tap consumer %d exited (%s): starting it again", child.index, returncode)
        ran = time.monotonic() - child.started_at
        delay = self._delays.get(child.index, RESTART_MIN_DELAY_S)
        if ran >= STABLE_AFTER_S:
            delay = RESTART_MIN_DELAY_S
        self._due[child.index] = time.monotonic() + delay
        self._delays[child.index] = min(delay * 2, RESTART_MAX_DELAY_S)

    def stop(self, timeout: float = 5.0) -> list[Batch]:
        """Stop every child and return the batches they sent before exiting."""
        self._stopping = True
        self._due.clear()
        children = list(self._children.values())
        for child in children:
            child.close_input()
        for child in children:
            child.join(timeout)
        batches = self.take()
        self._children.clear()
        return batches

    def status(self) -> dict[str, Any]:
        return {
            "processes": self.count + 1,  # the tap's own consumer is the first
            "running": self.running + 1,
            "restarts": self.restarts,
            "merged": self.merged,
            "error": self.last_error,
        }
