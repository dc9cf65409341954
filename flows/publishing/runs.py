"""Repeat runs as every web worker sees them: their status and cancel requests, shared.

A run publishes in the process that started it, on its vhost's publisher thread
(`flows.publishing.publisher`). With several web workers behind one address, the next
request about it (the progress poll, the Cancel button, `/api/publish/runs/<id>`) may reach
another worker. So the publisher thread writes each run's status to Django's cache (Redis
when one is configured: `dashboard.env.caches`) when the run starts, every
`SYNC_INTERVAL_S` and when it ends, and reads there the cancel requests any worker wrote.
A single process goes the same way through its in-memory cache: one mechanism, not a local
path beside a shared one.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.cache import BaseCache

from flows.shared_store import reaching_store, shared_store

# How often the publisher thread writes its runs' progress and reads their cancel requests.
SYNC_INTERVAL_S = 0.25
# How long a run's status is kept after its last write (a finished run's, for its page).
RUN_KEPT_S = 3600
# A run not finished whose status was last written this long ago has lost the process that
# ran it (stopped or crashed): reported as an error rather than as running for ever. Well
# above the longest a publisher thread goes without writing (a drain of confirms, a connect).
LOST_AFTER_S = 30.0
# How often a request waiting for a run to finish (after its cancel) reads its status.
WAIT_POLL_S = 0.05

FINISHED_STATES = frozenset({"done", "cancelled", "error"})
# A run's id as `RepeatRun` makes it; anything else in a URL is no run (and no cache key).
RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class RunStatus:
    """A repeat run's progress at one moment, as the publisher thread last wrote it."""

    id: str
    owner_id: int | None
    vhost: str
    state: str  # waiting, running, done, cancelled, error
    total: int
    published: int
    confirmed: int
    nacked: int
    returned: int
    rate: float | None  # messages per second asked for; None: as fast as possible
    achieved_rate: float  # confirmed per second so far
    elapsed_s: float
    error: str | None
    written_at: float  # time.time() when the publisher thread wrote it

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def percent(self) -> int:
        return int(100 * self.published / self.total) if self.total else 100

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "total": self.total,
            "published": self.published,
            "confirmed": self.confirmed,
            "nacked": self.nacked,
            "returned": self.returned,
            "rate_requested": self.rate,
            "achieved_rate": round(self.achieved_rate, 1),
            "elapsed_s": round(self.elapsed_s, 3),
            "error": self.error,
        }


class SharedRuns:
    """The runs' statuses and cancel requests in a Django cache (by default the default one).

    Each process's publishers hold one (`flows.publishing.publisher.Publishers`).
    """

    def __init__(self, store: BaseCache | None = None) -> None:
        self._store = store if store is not None else shared_store()

    def write(self, statuses: Iterable[RunStatus]) -> None:
        self._store.set_many({_status_key(s.id): s for s in statuses}, timeout=RUN_KEPT_S)

    def read(self, run_id: str) -> RunStatus | None:
        """The run's last status; None for no such run (or one forgotten since).
        Raises `SharedStoreDown` when the store cannot tell."""
        if not RUN_ID.fullmatch(run_id):
            return None
        with reaching_store("the run's progress cannot be read (it goes on publishing)"):
            status = self._store.get(_status_key(run_id))
        if not isinstance(status, RunStatus):
            return None
        if not status.finished and time.time() - status.written_at > LOST_AFTER_S:
            return dataclasses.replace(
                status,
                state="error",
                error=(
                    "The dashboard process publishing this run stopped reporting on it "
                    f"{time.time() - status.written_at:.0f} s ago (stopped or crashed): "
                    "it is no longer publishing."
                ),
            )
        return status

    def request_cancel(self, run_id: str) -> None:
        """Ask the run's publisher thread, in whichever process, to stop it."""
        if RUN_ID.fullmatch(run_id):
            with reaching_store("the run could not be asked to stop (it goes on publishing)"):
                self._store.set(_cancel_key(run_id), True, timeout=RUN_KEPT_S)

    def cancel_requested(self, run_ids: Iterable[str]) -> set[str]:
        """Which of these runs someone asked to cancel (one round trip for them all)."""
        keys = {_cancel_key(run_id): run_id for run_id in run_ids if RUN_ID.fullmatch(run_id)}
        return {keys[key] for key in self._store.get_many(list(keys))}

    def wait_finished(self, run_id: str, timeout: float) -> RunStatus | None:
        """The run's status once finished, or as it is after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        status = self.read(run_id)
        while status is not None and not status.finished and time.monotonic() < deadline:
            time.sleep(WAIT_POLL_S)
            status = self.read(run_id)
        return status


def _status_key(run_id: str) -> str:
    return f"repeat-run:{run_id}"


def _cancel_key(run_id: str) -> str:
    return f"repeat-run:{run_id}:cancel"


__all__ = ["RUN_KEPT_S", "SYNC_INTERVAL_S", "RunStatus", "SharedRuns"]
