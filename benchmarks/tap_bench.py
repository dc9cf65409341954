"""How fast is the tap, next to a bare pika consumer on the same broker, in the same run?

    flock /tmp/flows-bench.lock .venv/bin/python benchmarks/tap_bench.py [--messages 200000]

Prints one table:
1. a bare pika consumer (prefetch 2000, acks every 1000, like the tap) taking N small
   messages as the broker dead-letters them in one burst (the same burst the bindings tap
   gets below);
2. the tap's ingest rate in bindings mode and in firehose mode, inside a real dashboard
   (daphne) with one JSON websocket viewer connected (capped at its default 200 events/s,
   the rest sampled out and counted). The bindings-mode burst is made on the broker: a
   pre-filled queue dead-letters all N messages at once into a tapped fanout exchange when a
   `max-length: 0` policy is applied. The firehose burst is a bare consumer draining a
   pre-filled queue (every delivery is traced);
3. publish-to-viewer latency p50/p95/p99 at 100, 1,000 and 5,000 messages/s (publish time
   in a header, microseconds, viewer uncapped for the run);
4. the dashboard process's peak memory (VmHWM), the tap living inside it;
and whether every message was accounted for (received + overflow dropped == published,
and each viewer's received == sent + filtered out + sampled out + dropped).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import _harness

BODY = b'{"bench": true, "n": 0}'


# --- set-up ------------------------------------------------------------------------------------


def _publish_worker(vhost: str, queue: str, count: int) -> None:
    from flows.broker.amqp import open_blocking_connection

    connection = open_blocking_connection(vhost=vhost, purpose="bench publisher")
    channel = connection.channel()
    for _ in range(count):
        channel.basic_publish("", queue, BODY)
    connection.close()


def prefill(vhost: str, queue: str, count: int, processes: int = 2) -> float:
    """Publish `count` small messages to `queue` from a few processes; return msg/s."""
    started = time.perf_counter()
    share = count // processes
    workers = [
        multiprocessing.Process(
            target=_publish_worker,
            args=(vhost, queue, share + (count - share * processes if i == 0 else 0)),
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return count / (time.perf_counter() - started)


def wait_queue_length(channel, queue: str, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while channel.queue_declare(queue, passive=True).method.message_count < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"queue {queue} never reached {count} messages")
        time.sleep(0.1)


def drain(vhost: str, queue: str, count: int) -> float:
    """The bare consumer: take `count` messages; msg/s from the first to the last."""
    from flows.broker.amqp import open_blocking_connection

    connection = open_blocking_connection(vhost=vhost, purpose="bench bare consumer")
    channel = connection.channel()
    channel.basic_qos(prefetch_count=2000)
    received = 0
    first: float | None = None

    def on_message(ch, method, properties, body) -> None:
        nonlocal received, first
        if first is None:
            first = time.perf_counter()
        received += 1
        if received % 1000 == 0 or received == count:
            ch.basic_ack(method.delivery_tag, multiple=True)
        if received >= count:
            ch.stop_consuming()

    channel.basic_consume(queue, on_message)
    channel.start_consuming()
    elapsed = time.perf_counter() - (first or 0.0)
    connection.close()
    return (count - 1) / elapsed if elapsed > 0 else float("nan")


# --- a websocket viewer ------------------------------------------------------------------------


class Viewer(threading.Thread):
    """A JSON websocket viewer on its own thread, keeping the counts' timeline."""

    def __init__(self, base_url: str, cookie: str, **params: Any) -> None:
        super().__init__(daemon=True)
        from websockets.sync.client import connect

        query = urlencode({"format": "json", **params})
        self.ws = connect(
            base_url.replace("http://", "ws://") + "/ws/tap/?" + query,
            origin=base_url,
            additional_headers={"Cookie": cookie},
            max_size=None,
        )
        self.timeline: list[tuple[float, int, int]] = []  # (time, received, overflow)
        self.latencies: list[float] = []
        self.last: dict[str, Any] = {}
        self.state = ""
        self.mode = ""
        self.shown = 0
        self.start()

    def run(self) -> None:
        try:
            for raw in self.ws:
                now = time.time()
                message = json.loads(raw)
                self.last = message
                if message.get("type") == "status":
                    self.state = message["status"].get("state", "")
                    self.mode = message["status"].get("mode", "")
                tap = (message.get("counts") or {}).get("tap") or {}
                if "received" in tap:
                    self.timeline.append((now, tap["received"], tap.get("overflow_dropped", 0)))
                for event in message.get("events") or []:
                    self.shown += 1
                    sent_us = (event.get("headers") or {}).get("x-bench-sent-us")
                    if isinstance(sent_us, int):
                        self.latencies.append(now - sent_us / 1e6)
        except Exception:  # the socket closed: the run is over
            return

    def wait(self, predicate, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting; last message: {str(self.last)[:500]}")
            time.sleep(0.02)

    def wait_running(self) -> None:
        self.wait(lambda: self.state == "running", timeout=30)

    def taken(self) -> int:
        return self.timeline[-1][1] + self.timeline[-1][2] if self.timeline else 0

    def ingest_rate(self, count: int) -> float:
        """From the first message received to the `count`-th (received + overflowed)."""
        first = next(t for t, received, overflow in self.timeline if received + overflow > 0)
        base = next(received + overflow for t, received, overflow in self.timeline if t >= first)
        done = next(t for t, received, overflow in self.timeline if received + overflow >= count)
        return (count - base) / max(done - first, 1e-9) if done > first else float("nan")

    def accounting(self, published: int) -> int:
        """Unaccounted messages: tap and viewer identities, from the last counts seen."""
        counts = self.last.get("counts") or {}
        tap, viewer = counts.get("tap") or {}, counts.get("viewer") or {}
        tap_gap = published - tap.get("received", 0) - tap.get("overflow_dropped", 0)
        viewer_gap = viewer.get("received", 0) - (
            viewer.get("sent", 0)
            + viewer.get("filtered_out", 0)
            + viewer.get("sampled_out", 0)
            + viewer.get("dropped", 0)
        )
        return abs(tap_gap) + abs(viewer_gap)

    def close(self) -> None:
        self.ws.close()
        self.join(5)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the runs ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    from flows.broker.management_api import get_management_client

    n = args.messages
    cookie = _harness.session_cookie(_harness.bench_user(superuser=True))
    client = get_management_client()
    rows: list[tuple[str, str, str]] = []
    dashboard_env = {
        "FLOWS_TAP_QUEUE_MAX_LENGTH": str(n + 50_000),
        "FLOWS_TAP_STOP_DELAY": "1",
    }
    scratch = _harness.ScratchVhost(client, description="tap benchmark (deleted afterwards)")
    with (
        scratch as vhost,
        _harness.dashboard(**dashboard_env, FLOWS_FIREHOSE_VHOSTS=vhost) as dashboard,
    ):
        measure(n, client, vhost, dashboard, cookie, rows)

    width = max(len(row[0]) for row in rows)
    value_width = max(len(row[1]) for row in rows)
    print()
    print(f"{'what':<{width}}  {'figure':<{value_width}}  notes")
    for what, figure, notes in rows:
        print(f"{what:<{width}}  {figure:<{value_width}}  {notes}")


def measure(n: int, client, vhost: str, dashboard, cookie: str, rows: list) -> None:
    from flows.broker.amqp import open_blocking_connection
    from tests.support.broker_admin import delete_policy, set_policy

    # No heartbeats: this connection idles for minutes while the tap is measured.
    connection = open_blocking_connection(vhost=vhost, purpose="bench set-up", heartbeat=0)
    channel = connection.channel()
    try:
        # 1. the bare consumer, on the same dead-lettered messages the bindings tap gets
        channel.exchange_declare("bench.bare.fan", "fanout")
        channel.queue_declare("bench.bare")
        channel.queue_bind("bench.bare", "bench.bare.fan")
        channel.queue_declare(
            "bench.bare.hold", arguments={"x-dead-letter-exchange": "bench.bare.fan"}
        )
        rate = prefill(vhost, "bench.bare.hold", n)
        wait_queue_length(channel, "bench.bare.hold", n)
        # The bare consumer takes the burst as it arrives, exactly as the tap does below
        # (the broker dead-letters and delivers at the same time in both runs).
        result: list[float] = []
        consumer = threading.Thread(
            target=lambda: result.append(drain(vhost, "bench.bare", n)), daemon=True
        )
        consumer.start()
        time.sleep(1)
        burst_started = time.perf_counter()
        set_policy(
            client,
            vhost,
            "bench-burst-bare",
            pattern=r"^bench\.bare\.hold$",
            definition={"max-length": 0},
        )
        consumer.join()
        burst = n / (time.perf_counter() - burst_started)
        bare = result[0]
        rows.append(("bare pika consumer, drain", f"{bare:,.0f} msg/s", f"{n:,} msgs"))
        print(
            f"prefill publish {rate:,.0f} msg/s; burst taken in {burst:,.0f} msg/s; "
            f"bare {bare:,.0f} msg/s",
            flush=True,
        )

        # 2a. bindings mode: a server-side burst into a tapped fanout exchange
        channel.exchange_declare("bench.fan", "fanout")
        channel.queue_declare("bench.hold", arguments={"x-dead-letter-exchange": "bench.fan"})
        prefill(vhost, "bench.hold", n)
        wait_queue_length(channel, "bench.hold", n)
        viewer = Viewer(dashboard.url, cookie, vhost=vhost, mode="bindings")
        viewer.wait_running()
        time.sleep(1)
        set_policy(
            client, vhost, "bench-burst", pattern=r"^bench\.hold$", definition={"max-length": 0}
        )
        viewer.wait(lambda: viewer.taken() >= n)
        time.sleep(0.5)
        bindings = viewer.ingest_rate(n)
        unaccounted = viewer.accounting(n)
        overflow = viewer.timeline[-1][2]
        viewer.close()
        delete_policy(client, vhost, "bench-burst")
        rows.append(
            (
                "tap, bindings mode, 1 JSON viewer",
                f"{bindings:,.0f} msg/s ({bindings / bare:.2f}x bare)",
                f"unaccounted {unaccounted}, overflow {overflow}",
            )
        )
        print(f"bindings {bindings:,.0f} msg/s", flush=True)

        # 2b. firehose mode: every delivery of a draining consumer is traced
        channel.queue_declare("bench.fire")
        prefill(vhost, "bench.fire", n)
        wait_queue_length(channel, "bench.fire", n)
        viewer = Viewer(dashboard.url, cookie, vhost=vhost, mode="firehose")
        viewer.wait_running()
        time.sleep(1)
        traced_drain = drain(vhost, "bench.fire", n)
        viewer.wait(lambda: viewer.taken() >= n)
        time.sleep(0.5)
        fire = viewer.ingest_rate(n)
        unaccounted = viewer.accounting(n)
        viewer.close()
        rows.append(
            (
                "tap, firehose mode, 1 JSON viewer",
                f"{fire:,.0f} msg/s ({fire / bare:.2f}x bare)",
                f"unaccounted {unaccounted}; traced drain {traced_drain:,.0f} msg/s",
            )
        )
        print(f"firehose {fire:,.0f} msg/s", flush=True)
        time.sleep(2)  # the firehose tap stops and switches tracing off again

        # 3. latency, publish time in a header, viewer uncapped
        channel.exchange_declare("bench.lat", "fanout")
        for rate_per_s, seconds in ((100, 5), (1000, 3), (5000, 2)):
            viewer = Viewer(
                dashboard.url, cookie, vhost=vhost, mode="bindings", max_rate=10_000,
                exchange="bench.lat",
            )  # fmt: skip
            viewer.wait_running()
            viewer.wait(lambda v=viewer: bool(v.timeline), timeout=10)
            time.sleep(1)
            total = rate_per_s * seconds
            started = time.perf_counter()
            import pika

            for i in range(total):
                due = started + i / rate_per_s
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                channel.basic_publish(
                    "bench.lat",
                    "",
                    BODY,
                    pika.BasicProperties(headers={"x-bench-sent-us": int(time.time() * 1e6)}),
                )
            achieved = total / (time.perf_counter() - started)
            viewer.wait(lambda v=viewer, t=total: len(v.latencies) >= t, timeout=30)
            time.sleep(0.3)
            ms = sorted(1000 * value for value in viewer.latencies)
            q = statistics.quantiles(ms, n=100)
            rows.append(
                (
                    f"publish-to-viewer latency at {rate_per_s:,}/s",
                    f"p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, p99 {q[98]:.1f} ms",
                    f"{len(ms):,} of {total:,} seen; published at {achieved:,.0f}/s",
                )
            )
            print(rows[-1], flush=True)
            viewer.close()

        # 4. memory
        assert dashboard.process is not None
        rows.append(
            (
                "dashboard process peak RSS (tap inside)",
                f"{peak_rss_mb(dashboard.process.pid):.0f} MB",
                "VmHWM",
            )
        )
    finally:
        if connection.is_open:
            connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    _harness.setup_django("tap-bench-")
    run(args)


if __name__ == "__main__":
    main()
