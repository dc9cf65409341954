"""The one topology snapshot cache: one read of a vhost serves every page that asks soon after.

The topology page and `/api/topology`, `/api/route`, the publish page's predictions and
route-key suggestions, and the live page's predictions all read a vhost through the
process's one `TopologyCache` (`runtime().topology_cache`, see `flows.runtime`), so a burst
of viewers, publishes or tapped messages costs the broker one whole-vhost listing, not one
each:

- A read younger than `FLOWS_TOPOLOGY_MAX_AGE_S` is served as is.
- Older, a vhost whose read is slow (thousands of queues and bindings take the broker
  seconds: `FLOWS_TOPOLOGY_SLOW_READ_S`) is answered from the last read, at most
  `FLOWS_TOPOLOGY_MAX_STALE_S` old, while one background read refreshes it; any other is
  read again. Changes then show within one poll plus one read.
- One read per vhost at a time: whoever asks while a read runs waits for that read.
- Failures are never cached: a failed read drops the snapshot, so the next request reads
  again and reports the broker's error.

Two faces: `snapshot()`/`topology()` for views and threads (may wait for a read, raises the
broker's errors), and `latest()` for code on the event loop, which never waits on HTTP
(the read runs in a worker thread) and answers None rather than raising.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings

from flows.topology.reading import load_topology
from flows.topology.records import Topology
from flows.topology.shapes import topology_json

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    topology: Topology
    read_at: float  # time.monotonic() when the read started
    read_seconds: float

    @functools.cached_property
    def json_body(self) -> bytes:
        """The `/api/topology` body, encoded once per read however many viewers ask."""
        return json.dumps(topology_json(self.topology), ensure_ascii=False).encode()

    @functools.cached_property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.json_body).hexdigest()[:32] + '"'

    def age(self) -> float:
        return time.monotonic() - self.read_at


class TopologyCache:
    """The latest read of each vhost, shared by every page; see the module's docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshots: dict[str, Snapshot] = {}
        self._reading: dict[str, Future[Snapshot]] = {}
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="topology-refresh")
        # Reads started per vhost: what the broker was asked for, to see the sharing work.
        self.reads: Counter[str] = Counter()

    # Read at each use, so a changed setting applies at once.
    @property
    def max_age_s(self) -> float:
        return float(settings.FLOWS_TOPOLOGY_MAX_AGE_S)

    @property
    def slow_read_s(self) -> float:
        return float(settings.FLOWS_TOPOLOGY_SLOW_READ_S)

    @property
    def max_stale_s(self) -> float:
        return float(settings.FLOWS_TOPOLOGY_MAX_STALE_S)

    # --- the sync face ----------------------------------------------------------------------

    def snapshot(self, vhost: str) -> Snapshot:
        """The vhost's topology with its encoded JSON: recent enough, or read now.

        Raises what `load_topology` raises (UnknownVhost, BrokerError) when it reads.
        """
        current = self._current(vhost)
        if current is not None:
            age = current.age()
            if age <= self.max_age_s:
                return current
            if current.read_seconds >= self.slow_read_s and age <= self.max_stale_s:
                if age > current.read_seconds:
                    self._read_in_background(vhost)
                return current
        future, mine = self._start_read(vhost)
        if mine:
            self._read(vhost, future)
        return future.result()

    def topology(self, vhost: str) -> Topology:
        """Like `snapshot`, the topology alone."""
        return self.snapshot(vhost).topology

    # --- the async face ---------------------------------------------------------------------

    async def latest(self, vhost: str, *, wait: bool = False) -> Topology | None:
        """The last read (possibly a little old), starting a new one in a worker when due.

        Never waits on the broker, except with `wait` when there is no read at all yet (the
        first events of a page are then predicted). None when there is no read to give.
        """
        current = self._current(vhost)
        if current is None or current.age() > max(self.max_age_s, current.read_seconds):
            future = self._read_in_background(vhost)
            if current is None and wait:
                try:
                    # Shielded: a viewer that goes away must not cancel a read others share.
                    return (await asyncio.shield(asyncio.wrap_future(future))).topology
                except Exception:  # logged by the read; the caller shows "route unknown"
                    return None
        return current.topology if current is not None else None

    def refresh_soon(self, vhost: str, *, min_age_s: float = 1.0) -> None:
        """Read again ahead of the age limit (a consumer or queue the last read did not know)."""
        current = self._current(vhost)
        if current is not None and current.age() >= min_age_s:
            self._read_in_background(vhost)

    def close(self) -> None:
        """Wait for the reads under way and end the worker threads (the runtime's stop)."""
        self._pool.shutdown(wait=True)

    # --- reading ----------------------------------------------------------------------------

    def _current(self, vhost: str) -> Snapshot | None:
        with self._lock:
            return self._snapshots.get(vhost)

    def _start_read(self, vhost: str) -> tuple[Future[Snapshot], bool]:
        """The running read of the vhost, or a new one (True: the caller must do it)."""
        with self._lock:
            running = self._reading.get(vhost)
            if running is not None:
                return running, False
            future: Future[Snapshot] = Future()
            self._reading[vhost] = future
            self.reads[vhost] += 1
            return future, True

    def _read_in_background(self, vhost: str) -> Future[Snapshot]:
        future, mine = self._start_read(vhost)
        if mine:
            self._pool.submit(self._read, vhost, future)
        return future

    def _read(self, vhost: str, future: Future[Snapshot]) -> None:
        """Read the vhost and settle `future` with the snapshot or the error."""
        started = time.monotonic()
        try:
            topology = load_topology(vhost)
        except Exception as exc:
            LOGGER.info("topology read of %r failed: %s", vhost, exc)
            with self._lock:
                self._snapshots.pop(vhost, None)
                self._reading.pop(vhost, None)
            future.set_exception(exc)
            return
        except BaseException:
            with self._lock:
                self._reading.pop(vhost, None)
            future.cancel()
            raise
        snapshot = Snapshot(topology, started, time.monotonic() - started)
        with self._lock:
            current = self._snapshots.get(vhost)
            if current is None or current.read_at <= started:
                self._snapshots[vhost] = snapshot
            self._reading.pop(vhost, None)
        future.set_result(snapshot)


__all__ = ["Snapshot", "TopologyCache"]
