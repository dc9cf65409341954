"""What decoding costs per event, by kind of body: the price `/ws/tap/` pays per event sent.

    flock /tmp/flows-bench.lock .venv/bin/python benchmarks/decoding_bench.py

CPU time (not wall time: the machine is shared) per `with_decoded` call on one event, each
event built by the tap's own builder. Plain JSON and text are the cost of deciding that no
decoder applies.
"""

from __future__ import annotations

import gzip
import json
import pickle
import time

import _harness

_harness.setup_django("decoding-bench-")

import msgpack  # noqa: E402

from flows.tap.events import TapEvent, from_binding_delivery, with_decoded  # noqa: E402

TASK = {"task": "proj.tasks.add", "id": "x", "retries": 0, "lang": "py"}
ROWS = {"rows": [{"id": n, "name": f"n{n}", "v": n * 1.5} for n in range(1500)]}


def event(body: bytes, headers: dict | None = None, **properties: str) -> TapEvent:
    import pika

    return from_binding_delivery(
        seq=1,
        vhost="v",
        exchange="x",
        routing_key="k",
        properties=pika.BasicProperties(**properties, headers=headers or {}),
        body=body,
        received_at=0.0,
    )


CASES = {
    "plain JSON, 15 B": event(b'{"order": 4711}', content_type="application/json"),
    "text (cut JSON), 62 KiB": event(json.dumps(ROWS).encode()[:63_000]),
    "Celery task, JSON": event(
        json.dumps([[2, 3], {}, {}]).encode(), TASK, content_type="application/json"
    ),
    "Celery task, pickle": event(
        pickle.dumps(((2, 3), {"z": 1}, {"callbacks": None}), protocol=4),
        TASK,
        content_type="application/x-python-serialize",
    ),
    "pickle, 43 KiB": event(
        pickle.dumps(ROWS, protocol=4), content_type="application/x-python-serialize"
    ),
    "msgpack, 41 KiB": event(msgpack.packb(ROWS), content_type="application/x-msgpack"),
    "gzip JSON, 12 KiB to 64 KiB": event(
        gzip.compress(json.dumps(ROWS).encode()),
        content_type="application/json",
        content_encoding="gzip",
    ),
}


def main() -> None:
    print(f"{'body':30} {'size':>8} {'CPU per event':>14}")
    for name, sample in CASES.items():
        runs = 2000 if sample["body"]["size"] < 1000 else 30
        start = time.process_time()
        for _ in range(runs):
            with_decoded([sample], budget_s=10.0)
        per_event = (time.process_time() - start) / runs
        print(f"{name:30} {sample['body']['size']:>8} {per_event * 1e3:>11.3f} ms")


if __name__ == "__main__":
    main()
