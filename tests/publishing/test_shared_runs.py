"""`flows.publishing.runs`: a repeat run's status and its cancel, seen by every web worker.

Against real Redis (database 7) and the per-process memory cache: one worker writes, another
reads, as two daphne processes behind one address do.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from flows.publishing.fields import parse_publish_request
from flows.publishing.publisher import RepeatRun
from flows.publishing.runs import LOST_AFTER_S, SharedRuns
from tests.publishing.conftest import Worker


def a_run(shared: SharedRuns, **fields: str) -> RepeatRun:
    request = parse_publish_request({"vhost": "v", "exchange": "x", "repeat": "100", **fields})
    return RepeatRun(request, owner_id=7, shared=shared)


def test_a_status_written_through_one_worker_is_read_through_another(
    worker_cache: Worker,
) -> None:
    here, there = SharedRuns(worker_cache()), SharedRuns(worker_cache())
    run = a_run(here, rate="50")
    run.state, run.published, run.confirmed = "running", 40, 38
    here.write([run.status()])
    read = there.read(run.id)
    assert read is not None
    assert (read.id, read.owner_id, read.vhost, read.state) == (run.id, 7, "v", "running")
    assert (read.total, read.published, read.confirmed, read.rate) == (100, 40, 38, 50)
    assert not read.finished and read.percent == 40
    assert read.to_json() == run.snapshot()  # the JSON API's shape, whichever worker answers


def test_the_last_status_written_is_the_one_read(worker_cache: Worker) -> None:
    here, there = SharedRuns(worker_cache()), SharedRuns(worker_cache())
    run = a_run(here)
    here.write([run.status()])
    run._finish("done")  # shares its final status itself
    read = there.read(run.id)
    assert read is not None and (read.state, read.finished) == ("done", True)


def test_a_run_never_written_is_no_run(worker_cache: Worker) -> None:
    assert SharedRuns(worker_cache()).read("0" * 32) is None


@pytest.mark.parametrize(
    "run_id",
    ["no-such-run", "A" * 32, "../" + "0" * 29, "0" * 32 + " x", "0" * 33, ""],
)
def test_an_ill_formed_run_id_is_no_run_and_keeps_nothing(
    worker_cache: Worker, run_id: str
) -> None:
    """From a URL: never a cache key (Django warns on odd keys; these tests turn warnings
    into errors)."""
    shared = SharedRuns(worker_cache())
    assert shared.read(run_id) is None
    shared.request_cancel(run_id)
    assert shared.cancel_requested([run_id]) == set()


def test_a_cancel_asked_through_one_worker_reaches_the_other(worker_cache: Worker) -> None:
    here, there = SharedRuns(worker_cache()), SharedRuns(worker_cache())
    asked, other = a_run(here), a_run(here)
    assert here.cancel_requested([asked.id, other.id]) == set()
    there.request_cancel(asked.id)
    assert here.cancel_requested([asked.id, other.id]) == {asked.id}


@pytest.mark.parametrize(
    ("state", "age_s", "read_as"),
    [
        ("running", 0, "running"),
        ("waiting", LOST_AFTER_S / 2, "waiting"),
        ("running", LOST_AFTER_S + 1, "error"),  # its process stopped writing
        ("waiting", LOST_AFTER_S + 1, "error"),
        ("done", LOST_AFTER_S * 10, "done"),  # finished: nothing more to write
        ("cancelled", LOST_AFTER_S * 10, "cancelled"),
    ],
)
def test_a_run_whose_process_stopped_writing_reads_as_lost(
    worker_cache: Worker, state: str, age_s: float, read_as: str
) -> None:
    shared = SharedRuns(worker_cache())
    status = dataclasses.replace(
        a_run(shared).status(), state=state, written_at=time.time() - age_s
    )
    shared.write([status])
    read = shared.read(status.id)
    assert read is not None and read.state == read_as
    if read_as == "error":
        assert "stopped reporting" in (read.error or "")


def test_waiting_for_a_finished_run_answers_at_once(worker_cache: Worker) -> None:
    shared = SharedRuns(worker_cache())
    run = a_run(shared)
    run._finish("cancelled")
    assert shared.wait_finished(run.id, timeout=60) == shared.read(run.id)
    unfinished = a_run(shared)
    shared.write([unfinished.status()])
    waited = shared.wait_finished(unfinished.id, timeout=0)
    assert waited is not None and waited.state == "waiting"
    assert shared.wait_finished("0" * 32, timeout=0) is None
