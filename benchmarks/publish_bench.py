"""Repeat mode with publisher confirms vs a bare pika publisher, on the real broker.

Run under the shared lock (other benchmarks use the same two cores):

    flock /tmp/flows-bench.lock .venv/bin/python benchmarks/publish_bench.py --count 50000

Each publisher sends `--count` messages (`--size` bytes) to a direct exchange bound to one
queue, in a scratch vhost that is deleted afterwards. Prints one row per publisher.
"""

from __future__ import annotations

import argparse
import time

import _harness

_harness.setup_django("publish-bench-")

from flows.broker.amqp import open_blocking_connection  # noqa: E402
from flows.broker.management_api import ManagementClient  # noqa: E402
from flows.publishing.fields import parse_publish_request  # noqa: E402
from flows.runtime import runtime  # noqa: E402


def declare_bench_queue(vhost: str) -> None:
    client = runtime().management_client
    client.declare_exchange(vhost, "bench", exchange_type="direct")
    client.declare_queue(vhost, "bench.q", durable=False)
    client.bind(vhost, "bench", "bench.q", routing_key="k")


def purge(vhost: str) -> None:
    connection = open_blocking_connection(vhost=vhost, purpose="bench purge")
    connection.channel().queue_purge("bench.q")
    connection.close()


def bare_pika(vhost: str, count: int, body: bytes, *, confirms: bool) -> float:
    connection = open_blocking_connection(vhost=vhost, purpose="bench bare")
    channel = connection.channel()
    if confirms:
        channel.confirm_delivery()
    started = time.perf_counter()
    for _ in range(count):
        channel.basic_publish("bench", "k", body)
    if not confirms:
        # Wait until the broker has them all, so both columns measure the same thing.
        connection.process_data_events(0)
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def repeat_mode(vhost: str, count: int, body: bytes) -> tuple[float, int]:
    request = parse_publish_request(
        {
            "vhost": vhost,
            "exchange": "bench",
            "routing_key": "k",
            "body": body.decode(),
            "repeat": str(count),
        }
    )
    run = runtime().publishers.start_repeat(request)
    run.wait(600)
    assert run.state == "done", (run.state, run.error)
    return run.elapsed_s, run.confirmed


def wait_for_depth(vhost: str, expected: int, timeout: float = 30) -> None:
    connection = open_blocking_connection(vhost=vhost, purpose="bench depth")
    channel = connection.channel()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if channel.queue_declare("bench.q", passive=True).method.message_count >= expected:
            break
        time.sleep(0.05)
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    body = b"x" * args.size
    rows: dict[str, list[float]] = {
        "bare pika, no confirms": [],
        "bare pika, confirm each": [],
        "repeat mode, confirms": [],
    }
    # A client of its own for the vhost: stopping the runtime below closes the runtime's.
    admin = ManagementClient.from_settings()
    scratch = _harness.ScratchVhost(admin, description="publish benchmark (deleted afterwards)")
    with admin, scratch as vhost:
        declare_bench_queue(vhost)
        try:
            measure(args, vhost, body, rows)
        finally:
            runtime().stop()
    print(f"{args.count} messages of {args.size} bytes, {args.rounds} rounds, one queue")
    print(f"| {'publisher':<26} | {'median msg/s':>12} | {'best msg/s':>10} |")
    print(f"|{'-' * 28}|{'-' * 13}:|{'-' * 11}:|")
    for name, rates in rows.items():
        rates.sort()
        print(f"| {name:<26} | {rates[len(rates) // 2]:>12,.0f} | {rates[-1]:>10,.0f} |")


def measure(args: argparse.Namespace, vhost: str, body: bytes, rows: dict) -> None:
    for _ in range(args.rounds):
        elapsed = bare_pika(vhost, args.count, body, confirms=False)
        wait_for_depth(vhost, args.count)
        rows["bare pika, no confirms"].append(args.count / elapsed)
        purge(vhost)
        confirm_count = min(args.count, 10_000)  # one round trip each: slow
        elapsed = bare_pika(vhost, confirm_count, body, confirms=True)
        rows["bare pika, confirm each"].append(confirm_count / elapsed)
        purge(vhost)
        elapsed, confirmed = repeat_mode(vhost, args.count, body)
        assert confirmed == args.count
        rows["repeat mode, confirms"].append(confirmed / elapsed)
        purge(vhost)


if __name__ == "__main__":
    main()
