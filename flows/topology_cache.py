"""One topology read per vhost at a time, shared by every viewer (stale-while-revalidate).

A small vhost is read afresh for every request: it costs the broker milliseconds, and a
change must show at once. A vhost whose read is slow (thousands of queues and bindings
take the broker seconds) is answered from the last read, at most `FLOWS_TOPOLOGY_MAX_STALE_S`
old, while one background read refreshes it: each graph on screen polls every few seconds,
and without this every poll would cost the broker a whole-vhost listing, one after another.
Changes then show within one poll plus one read.

Failures are never cached: a failed background read drops the snapshot, so the next
request reads synchronously and reports the broker's error.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings

from flows.topology import Topology, load_topology
from flows.topology_json import topology_json

LOGGER = logging.getLogger(__name__)

_lock = threading.Lock()
_snapshots: dict[str, Snapshot] = {}
_refreshing: dict[str, Future] = {}
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="topology-refresh")


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


def _slow_read_seconds() -> float:
    return float(getattr(settings, "FLOWS_TOPOLOGY_SLOW_READ_S", 1.0))


def _max_stale_seconds() -> float:
    return float(getattr(settings, "FLOWS_TOPOLOGY_MAX_STALE_S", 60.0))


def _read(vhost: str) -> Snapshot:
    started = time.monotonic()
    topology = load_topology(vhost)
    snapshot = Snapshot(topology, started, time.monotonic() - started)
    with _lock:
        current = _snapshots.get(vhost)
        if current is None or current.read_at <= started:
            _snapshots[vhost] = snapshot
    return snapshot


def _refresh_in_background(vhost: str) -> None:
    def run() -> None:
        try:
            _read(vhost)
        except Exception as exc:  # the next request reads synchronously and reports it
            LOGGER.info("background topology read of %r failed: %s", vhost, exc)
            with _lock:
                _snapshots.pop(vhost, None)
        finally:
            with _lock:
                _refreshing.pop(vhost, None)

    with _lock:
        if vhost not in _refreshing:
            _refreshing[vhost] = _pool.submit(run)


def current_topology(vhost: str) -> Topology:
    """The vhost's topology: fresh, or for a slow vhost the last read while a new one runs.

    Raises what `load_topology` raises (UnknownVhost, BrokerError) when it reads.
    """
    return current_snapshot(vhost).topology


def current_snapshot(vhost: str) -> Snapshot:
    """Like `current_topology`, with the read's encoded JSON at hand."""
    with _lock:
        snapshot = _snapshots.get(vhost)
    if snapshot is not None and snapshot.read_seconds >= _slow_read_seconds():
        age = time.monotonic() - snapshot.read_at
        if age <= _max_stale_seconds():
            if age > snapshot.read_seconds:
                _refresh_in_background(vhost)
            return snapshot
    return _read(vhost)


def forget(vhost: str | None = None) -> None:
    """Drop the snapshot of one vhost (or all): the next request reads afresh."""
    with _lock:
        if vhost is None:
            _snapshots.clear()
        else:
            _snapshots.pop(vhost, None)


__all__ = ["Snapshot", "current_snapshot", "current_topology", "forget"]
