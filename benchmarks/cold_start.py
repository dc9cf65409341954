"""Cold start: from the README's first command to a loaded scenario with messages flowing.

    .venv/bin/python benchmarks/cold_start.py [--scenario topics] [--runs 3]

Each run starts `bin/run --demo SCENARIO` exactly as a speaker would (the venv is already
installed: installation is excluded, as the target says), on a free port, with a state
directory of its own (a first start: migrations, no account yet) and a vhost of its own, and
times from the command's start to:

- `vhost`: the scenario's vhost exists (the load has begun);
- `http`: the dashboard answers its sign-in page;
- `consumers`: every worker the scenario starts is consuming (the consumer counts of a
  passive `queue.declare`, which are current, unlike `/api/consumers`, which lags by up to
  the broker's 5 s statistics interval);
- `first message`: the first message a scenario publisher sent has been routed by its
  exchange (an observer queue of this script's own, exclusive, bound `#` to the exchange).

"Loaded with messages flowing" is the later of the last two. The scenario is unloaded after
each run (`manage.py demo unload`). Prints one row per run, the median, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pika
import pika.exceptions

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.live_server import free_port  # noqa: E402

TIMEOUT_S = 60.0


@dataclass
class Marks:
    start: float
    times: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str) -> None:
        self.times.setdefault(name, time.perf_counter() - self.start)

    def flowing(self) -> float | None:
        if "consumers" in self.times and "first message" in self.times:
            return max(self.times["consumers"], self.times["first message"])
        return None


@dataclass(frozen=True)
class Facts:
    exchange: str  # the first publisher's
    workers: dict[str, int]  # queue: how many workers consume it


def scenario_facts(name: str) -> Facts:
    spec = tomllib.loads((REPO_ROOT / "flows/demo/scenarios" / f"{name}.toml").read_text())
    workers: dict[str, int] = {}
    for worker in spec.get("workers", []):
        workers[worker["queue"]] = workers.get(worker["queue"], 0) + int(worker.get("count", 1))
    return Facts(spec["publishers"][0].get("exchange", ""), workers)


def all_consuming(connection: pika.BlockingConnection, workers: dict[str, int]) -> bool:
    for queue, wanted in workers.items():
        channel = connection.channel()
        try:
            declared = channel.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return False
        channel.close()
        if declared.method.consumer_count < wanted:
            return False
    return True


def watch(vhost: str, facts: Facts, marks: Marks, done: threading.Event) -> None:
    """Connect as soon as the vhost exists; bind an observer queue once the exchange does;
    then count consumers until every worker consumes."""
    deadline = time.monotonic() + TIMEOUT_S
    params = pika.ConnectionParameters(
        "127.0.0.1",
        virtual_host=vhost,
        credentials=pika.PlainCredentials("guest", "guest"),
        client_properties={"connection_name": "cold-start benchmark observer"},
    )
    while not done.is_set() and time.monotonic() < deadline:
        try:
            connection = pika.BlockingConnection(params)
        except pika.exceptions.AMQPError:
            time.sleep(0.05)
            continue
        marks.mark("vhost")
        try:
            while not done.is_set() and time.monotonic() < deadline:
                channel = connection.channel()
                try:
                    channel.exchange_declare(facts.exchange, passive=True)
                except pika.exceptions.ChannelClosedByBroker:
                    time.sleep(0.05)
                    continue
                queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
                channel.queue_bind(queue, facts.exchange, routing_key="#")
                for method, _properties, _body in channel.consume(queue, inactivity_timeout=0.05):
                    if method is not None:
                        marks.mark("first message")
                    if "consumers" not in marks.times and all_consuming(connection, facts.workers):
                        marks.mark("consumers")
                    if marks.flowing() is not None or done.is_set() or time.monotonic() > deadline:
                        return
        finally:
            connection.close()


def one_run(scenario: str) -> Marks:
    facts = scenario_facts(scenario)
    vhost = f"flows-bench-cold-{uuid.uuid4().hex[:8]}"
    port = free_port()
    state = Path(tempfile.mkdtemp(prefix="cold-start-"))
    env = {**os.environ, "FLOWS_STATE_DIR": str(state), "DATABASE_URL": "", "PYTHONUNBUFFERED": "1"}
    log = (state / "run.log").open("w")
    marks = Marks(start=time.perf_counter())
    process = subprocess.Popen(  # noqa: S603 - our own command
        [
            str(REPO_ROOT / "bin/run"),
            "--port",
            str(port),
            "--demo",
            scenario,
            "--demo-vhost",
            vhost,
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    done = threading.Event()
    observer = threading.Thread(target=watch, args=(vhost, facts, marks, done))
    observer.start()
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline and marks.flowing() is None:
            if process.poll() is not None:
                raise SystemExit(f"bin/run exited early; see {state / 'run.log'}")
            if "http" not in marks.times:
                try:
                    url = f"http://127.0.0.1:{port}/accounts/login/"
                    with urllib.request.urlopen(url, timeout=1):
                        marks.mark("http")
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.05)
    finally:
        done.set()
        observer.join()
        process.terminate()
        process.wait(timeout=30)
        subprocess.run(  # noqa: S603
            [
                str(REPO_ROOT / ".venv/bin/python"),
                "manage.py",
                "demo",
                "unload",
                scenario,
                "--vhost",
                vhost,
            ],
            cwd=REPO_ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="topics")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    columns = ("vhost", "http", "consumers", "first message")
    print(f"cold start of `bin/run --demo {options.scenario}` (seconds from the command's start)")
    print(" | ".join(f"{c:>13}" for c in (*columns, "flowing")))
    flowing = []
    for _ in range(options.runs):
        marks = one_run(options.scenario)
        total = marks.flowing()
        if total is not None:
            flowing.append(total)
        cells = [marks.times.get(c) for c in columns] + [total]
        print(" | ".join(f"{c:>13.2f}" if c is not None else f"{'timeout':>13}" for c in cells))
    if flowing:
        print(f"median to messages flowing: {statistics.median(flowing):.2f} s")
    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
