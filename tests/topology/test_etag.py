"""`/api/topology`'s ETag is its content's: two web workers that read the same vhost answer
the same ETag, so a browser's If-None-Match gets a 304 from either.

The workers keep a snapshot each rather than one shared in Redis: the snapshot is the parsed
topology (thousands of records in a large vhost), read by code on the event loop that must
never wait on a socket, and a read costs the broker less than shipping it through Redis
would cost each worker. What they must agree on is the ETag: a hash of the body, whose
order comes from the broker's listing and the parser's sort, never from a Python set.
"""

from __future__ import annotations

import os
import subprocess
import sys

from flows.topology.cache import Snapshot
from flows.topology.parsing import build_topology
from tests.support.live_server import REPO_ROOT
from tests.support.topology_definitions import binding, exchange, queue

# In the order the management API lists them (bindings sorted by source, destination, key).
RAW = {
    "exchanges": [exchange("orders", "topic"), exchange("audit", "fanout", alternate="x")],
    "queues": [queue("zeta", {"x-max-length": 10}), queue("alpha")],
    "bindings": [
        binding("orders", "alpha", "order.*"),
        binding("orders", "audit", "#", to="exchange"),
        binding("orders", "zeta", "order.eu.#", arguments={"b": 2, "a": 1}),
    ],
}

ETAG_OF_RAW = f"""
from flows.topology.cache import Snapshot
from flows.topology.parsing import build_topology
print(Snapshot(build_topology("v", **{RAW!r}), 0.0, 0.0).etag)
"""


def etag_in_a_process(hash_seed: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", ETAG_OF_RAW],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_two_processes_agree_on_the_etag_of_the_same_topology() -> None:
    here = Snapshot(build_topology("v", **RAW), 0.0, 0.0).etag
    # Each web worker hashes strings with its own seed: what it iterates must not depend on it.
    assert {etag_in_a_process("1"), etag_in_a_process("2")} == {here}


def test_any_change_is_another_etag() -> None:
    same = Snapshot(build_topology("v", **RAW), 0.0, 0.0).etag
    changed = Snapshot(
        build_topology("v", **{**RAW, "queues": [*RAW["queues"], queue("new")]}), 0.0, 0.0
    ).etag
    assert same != changed
