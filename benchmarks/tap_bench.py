"""The tap next to the real limit: a bare pika consumer draining a queue, on the same broker, in
the same run.

    flock /tmp/flows-bench.lock .venv/bin/python benchmarks/tap_bench.py [--messages 200000]
    .venv/bin/python benchmarks/tap_bench.py --quick      # a smoke run of a few seconds
    ... tap_bench.py --profile DIR    # also py-spy the dashboard during the CPU phase
    ... tap_bench.py --tap-process    # the tap in its own process, as `serve` runs it with Redis
    ... tap_bench.py --consumers 2    # FLOWS_TAP_CONSUMERS: consumer processes on the tap queue

`--profile DIR` samples the dashboard process with py-spy (requirements-dev.txt) while the
CPU-per-message phase runs and writes `DIR/cpu.collapsed` (flame-graph stacks) and
`DIR/cpu-top.txt`: the functions with the most samples, self and total.

One table (figures, ratios and the load average, which says how far to trust them):

1. **the limit**: a bare pika consumer (prefetch 2,000, one multiple ack every 1,000)
   draining a queue pre-filled with N small messages;
2. **ingest**, the tap inside a real dashboard (daphne) with one JSON viewer taking every
   event: bindings mode under N messages from several unpaced publisher processes into a
   tapped fanout exchange (offered as fast as they go, printed beside it); firehose mode
   while a bare consumer drains N pre-filled messages (every delivery traced);
3. **CPU time per message** at one fixed offered rate (paced publisher processes): the
   dashboard process with its tap and one JSON viewer, next to a bare consumer process
   taking the same load. A rate moves with a noisy machine; CPU per message far less;
4. **publish-to-viewer latency** p50/p95/p99 at 100, 1,000, 5,000 and 20,000 msg/s (paced
   publisher processes stamp the publish time in a header);
5. **peak memory**: the dashboard's VmHWM (its ru_maxrss), the bare consumer's ru_maxrss;
6. **unaccounted** messages per run: offered - (tap received + tap overflow), and each
   viewer's received - (sent + filtered out + sampled out + dropped).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import _harness

BODY = b'{"bench": true, "n": 0}'
SPAWN = multiprocessing.get_context("spawn")  # publishers inherit nothing of this process


@dataclass(frozen=True)
class Plan:
    messages: int
    cpu_rate: int
    cpu_seconds: float
    latency: tuple[tuple[int, float], ...]  # (msg/s, seconds)
    publishers: int
    sustained: tuple[int, float]  # (msg/s, seconds) offered while pages are loaded
    profile: Path | None = None
    # The tap in its own process (`manage.py tap`, behind Redis), as `serve` runs it when
    # CHANNEL_LAYER_URL is Redis: CPU and memory are then both processes' together.
    tap_process: bool = False
    # FLOWS_TAP_CONSUMERS: with more than one, the consumer processes' CPU and memory count.
    consumers: int = 1


FULL = Plan(
    messages=200_000,
    cpu_rate=5_000,
    cpu_seconds=6,
    latency=((100, 5), (1_000, 4), (5_000, 3), (20_000, 3)),
    publishers=4,
    sustained=(20_000, 60),
)
QUICK = Plan(
    messages=3_000,
    cpu_rate=1_000,
    cpu_seconds=1,
    latency=((100, 1), (1_000, 1)),
    publishers=2,
    sustained=(1_000, 2),
)


# --- publisher and consumer processes (plain pika: nothing of Django) -------------------------


def _url(amqp_url: str, vhost: str) -> str:
    return urlsplit(amqp_url)._replace(path="/" + quote(vhost, safe="")).geturl()


def _publish(amqp_url, vhost, exchange, key, count, rate, window) -> None:
    """Publish `count` messages; `rate` > 0 paces them (msg/s) and stamps the publish time.
    Puts (first, last) publish times (time.time) on `window`."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(_url(amqp_url, vhost)))
    channel = connection.channel()
    started = time.perf_counter()
    first = time.time()
    for i in range(count):
        if rate > 0:
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            stamp = {"x-bench-sent-us": int(time.time() * 1e6)}
            channel.basic_publish(exchange, key, BODY, pika.BasicProperties(headers=stamp))
        else:
            channel.basic_publish(exchange, key, BODY)
    connection.close()  # after the broker has them all
    window.put((first, time.time()))


def publish(amqp_url, vhost, exchange, key, count, *, processes, rate=0.0) -> float:
    """`count` messages from `processes` publisher processes; msg/s offered, from the first
    publish of any of them to the last (their start-up left out)."""
    shares = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
    window = SPAWN.Queue()
    workers = [
        SPAWN.Process(
            target=_publish, args=(amqp_url, vhost, exchange, key, n, rate / processes, window)
        )
        for n in shares
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise SystemExit(f"a publisher exited with {worker.exitcode}")
    windows = [window.get(timeout=60) for _ in workers]
    elapsed = max(end for _, end in windows) - min(start for start, _ in windows)
    return count / elapsed if elapsed > 0 else math.nan


def _consume(amqp_url, vhost, queue, count, ready, results, gather_s=0.0) -> None:
    """A bare consumer in a process of its own: (msg/s, CPU s, ru_maxrss KiB) for `count`.
    `gather_s` > 0: it reads what arrived every `gather_s` (as the tap does while it holds a
    batch) instead of waking for each delivery (pika's `start_consuming`)."""
    import resource

    import pika

    connection = pika.BlockingConnection(pika.URLParameters(_url(amqp_url, vhost)))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=2000)
    received = 0
    first: float | None = None
    cpu_start = 0.0

    def on_message(ch, method, properties, body) -> None:
        nonlocal received, first, cpu_start
        if first is None:
            first = time.perf_counter()
        received += 1
        if received % 1000 == 0 or received == count:
            ch.basic_ack(method.delivery_tag, multiple=True)
        if received >= count:
            ch.stop_consuming()

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    channel.basic_consume(queue, on_message)
    ready.set()
    if gather_s > 0:
        while received < count:
            connection.process_data_events(time_limit=0)
            time.sleep(gather_s)
    else:
        channel.start_consuming()
    elapsed = time.perf_counter() - (first or 0.0)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    connection.close()
    rate = (count - 1) / elapsed if elapsed > 0 else float("nan")
    results.put((rate, usage.ru_utime + usage.ru_stime - cpu_start, usage.ru_maxrss))


def consume(amqp_url: str, vhost: str, queue: str, count: int, during=None, gather_s=0.0):
    """Run a bare consumer process taking `count` messages; `during()` runs once it listens."""
    ready, results = SPAWN.Event(), SPAWN.Queue()
    process = SPAWN.Process(
        target=_consume, args=(amqp_url, vhost, queue, count, ready, results, gather_s)
    )
    process.start()
    if not ready.wait(60):
        raise SystemExit("the bare consumer never started")
    if during is not None:
        during()
    outcome = results.get(timeout=600)
    process.join()
    return outcome


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
            ping_interval=None,  # a stopped dashboard (the drain phase) must not time it out
        )
        self.timeline: list[tuple[float, int, int]] = []  # (time, received, overflow)
        # What the tap had received before this viewer joined (the tap may be running already):
        # from then on the viewer's received is the tap's received less this, exactly.
        self.baseline: int | None = None
        self.latencies: list[float] = []
        self.last: dict[str, Any] = {}
        self.state = ""
        self.consumers_running = 0
        self.start()

    def run(self) -> None:
        try:
            for raw in self.ws:
                now = time.time()
                message = json.loads(raw)
                if message.get("type") == "status":
                    self.state = message["status"].get("state", "")
                    consumers = message["status"].get("consumers") or {}
                    self.consumers_running = consumers.get("running", 0)
                for event in message.get("events") or []:
                    sent_us = (event.get("headers") or {}).get("x-bench-sent-us")
                    if isinstance(sent_us, int):
                        self.latencies.append(now - sent_us / 1e6)
                if message.get("more"):
                    continue  # counts as of part of a batch
                self.last = message
                counts = message.get("counts") or {}
                tap = counts.get("tap") or {}
                if self.baseline is None and "received" in tap:
                    self.baseline = tap["received"] - counts["viewer"]["received"]
                if "received" in tap:
                    self.timeline.append((now, tap["received"], tap.get("overflow_dropped", 0)))
        except Exception:  # the socket closed: the run is over
            return

    def wait(self, predicate, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting; last message: {str(self.last)[:500]}")
            time.sleep(0.02)

    def wait_running(self, consumers: int = 1) -> None:
        self.wait(
            lambda: (
                self.state == "running"
                and bool(self.timeline)
                and self.consumers_running >= consumers
            ),
            timeout=60,
        )

    def taken(self) -> int:
        return self.timeline[-1][1] + self.timeline[-1][2] if self.timeline else 0

    def wait_taken(self, count: int) -> None:
        """Until the tap accounts for `count`, and this viewer for all the tap received."""
        self.wait(lambda: self.taken() >= count and self.caught_up())

    def caught_up(self) -> bool:
        counts = self.last.get("counts") or {}
        tap_received = counts.get("tap", {}).get("received", 0) - (self.baseline or 0)
        return counts.get("viewer", {}).get("received") == tap_received

    def ingest_rate(self, count: int, since: int = 0) -> float:
        """From the first message taken after `since` to the `count`-th (received +
        overflowed)."""
        started = next((t, r + o) for t, r, o in self.timeline if r + o > since)
        done = next(t for t, r, o in self.timeline if r + o >= count)
        return (count - started[1]) / (done - started[0]) if done > started[0] else math.nan

    def unaccounted(self, offered: int, before: int = 0) -> int:
        """`offered` messages since the tap had taken `before`: those neither taken nor
        dropped by the tap, plus those the viewer's counts do not explain."""
        counts = self.last.get("counts") or {}
        viewer = counts.get("viewer") or {}
        tap_gap = offered - (self.taken() - before)
        viewer_gap = viewer.get("received", 0) - sum(
            viewer.get(k, 0) for k in ("sent", "filtered_out", "sampled_out", "dropped")
        )
        since_join = counts.get("tap", {}).get("received", 0) - (self.baseline or 0)
        return abs(tap_gap) + abs(viewer_gap) + abs(viewer.get("received", 0) - since_join)

    def viewer_dropped(self) -> int:
        return (self.last.get("counts") or {}).get("viewer", {}).get("dropped", 0)

    def close(self) -> None:
        self.ws.close()
        self.join(5)


def page_load_s(base_url: str, cookie: str, vhost: str) -> float:
    """Seconds to load the live page's HTML, signed in."""
    from urllib.request import Request, urlopen

    request = Request(  # noqa: S310 (the benchmark's own dashboard, on loopback)
        f"{base_url}/live/?{urlencode({'vhost': vhost})}", headers={"Cookie": cookie}
    )
    started = time.perf_counter()
    with urlopen(request, timeout=30) as response:  # noqa: S310
        response.read()
    return time.perf_counter() - started


def process_cpu_s(pid: int) -> float:
    """utime + stime of a process (and its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_children(pids: list[int]) -> list[int]:
    """`pids` and their children (the tap's consumer processes), as /proc lists them now."""
    from tests.support.processes import children_of

    return [*pids, *children_of(*pids)]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def wait_queue_length(channel, queue: str, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while channel.queue_declare(queue, passive=True).method.message_count < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"queue {queue} never reached {count} messages")
        time.sleep(0.1)


# --- the runs ----------------------------------------------------------------------------------


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add(self, what: str, figure: str, notes: str = "") -> None:
        self.rows.append((what, figure, notes))
        print(f"  {what}: {figure}  {notes}", flush=True)

    def print(self) -> None:
        width = max(len(row[0]) for row in self.rows)
        value_width = max(len(row[1]) for row in self.rows)
        print()
        print(f"{'what':<{width}}  {'figure':<{value_width}}  notes")
        for what, figure, notes in self.rows:
            print(f"{what:<{width}}  {figure:<{value_width}}  {notes}")


class Profiler:
    """py-spy sampling a process into `directory` (nothing when it is None)."""

    def __init__(self, directory: Path | None, pid: int, index: int = 0) -> None:
        self.directory = directory
        self.name = "cpu" if index == 0 else f"cpu-{index}"
        self.process: subprocess.Popen[bytes] | None = None
        if directory is None:
            return
        directory.mkdir(parents=True, exist_ok=True)
        py_spy = Path(sys.executable).with_name("py-spy")
        self.process = subprocess.Popen(  # noqa: S603 (our own venv's py-spy)
            [str(py_spy), "record", "--pid", str(pid), "--rate", "250", "--threads",
             "--format", "raw", "--output", str(directory / f"{self.name}.collapsed"),
             "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1)  # py-spy attaches

    def stop(self) -> None:
        if self.process is None or self.directory is None:
            return
        self.process.send_signal(signal.SIGINT)
        self.process.wait(30)
        collapsed = self.directory / f"{self.name}.collapsed"
        (self.directory / f"{self.name}-top.txt").write_text(top_functions(collapsed))


def top_functions(collapsed: Path, limit: int = 45) -> str:
    """py-spy's collapsed stacks summed: samples per thread, then the functions with the
    most samples (self and total, a function counted once per stack), lines merged."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    threads: dict[str, int] = {}
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        name = thread.split(": ", 1)[-1]
        threads[name] = threads.get(name, 0) + count
        functions = [re.sub(r":\d+\)$", ")", frame) for frame in frames] or ["(idle)"]
        samples += count
        own[functions[-1]] = own.get(functions[-1], 0) + count
        for function in set(functions):
            total[function] = total.get(function, 0) + count
    lines = [f"{samples} samples", ""]
    for name, count in sorted(threads.items(), key=lambda item: -item[1]):
        lines.append(f"{100 * count / samples:6.1f}%  thread {name}")
    lines += ["", "self %  total %  function (most samples of its own first)"]
    for function, count in sorted(own.items(), key=lambda item: -item[1])[:limit]:
        lines.append(
            f"{100 * count / samples:6.1f}  {100 * total[function] / samples:6.1f}  {function}"
        )
    lines += ["", "total %  function (most samples in all first)"]
    for function, count in sorted(total.items(), key=lambda item: -item[1])[:limit]:
        lines.append(f"{100 * count / samples:6.1f}  {function}")
    return "\n".join(lines) + "\n"


def load() -> str:
    return "load average " + ", ".join(f"{value:.1f}" for value in os.getloadavg())


def run(plan: Plan) -> Table:
    from django.conf import settings

    from flows.runtime import runtime

    cookie = _harness.session_cookie(_harness.bench_user(superuser=True))
    client = runtime().management_client
    table = Table()
    table.add("machine at the start", load())
    env = {
        "FLOWS_TAP_QUEUE_MAX_LENGTH": str(plan.messages + 50_000),
        "FLOWS_TAP_STOP_DELAY": "1",
        "FLOWS_TAP_CONSUMERS": str(plan.consumers),
    }
    if plan.tap_process:
        from tests.support.tap_process import redis_env

        env.update(redis_env(os.environ["DATABASE_URL"], FLOWS_TAP_STOP_DELAY="1"))
    table.add("where the tap runs", "its own process (Redis)" if plan.tap_process else "in daphne")
    table.add("consumers on the tap queue", f"{plan.consumers}",
              "the tap's own" + (f" + {plan.consumers - 1} consumer processes"
                                 if plan.consumers > 1 else ""))  # fmt: skip
    scratch = _harness.ScratchVhost(client, description="tap benchmark (deleted afterwards)")
    with scratch as vhost, contextlib.ExitStack() as stack:
        env["FLOWS_FIREHOSE_VHOSTS"] = vhost
        dashboard = stack.enter_context(_harness.dashboard(**env))
        assert dashboard.process is not None
        pids = [dashboard.process.pid]
        if plan.tap_process:
            from tests.support.tap_process import TapProcess

            tap = TapProcess(env)
            stack.callback(tap.stop)
            pids.append(tap.process.pid)
        measure(plan, settings.AMQP_URL, vhost, dashboard, pids, cookie, table)
    table.add("machine at the end", load())
    return table


def measure(
    plan: Plan, amqp_url: str, vhost: str, dashboard, pids: list[int], cookie: str, table: Table
) -> None:
    """`pids`: the processes doing the tap's work (daphne, and the tap process if any)."""
    from flows.broker.amqp import open_blocking_connection

    n = plan.messages
    # No heartbeats: this connection idles for minutes while the tap is measured.
    connection = open_blocking_connection(vhost=vhost, purpose="bench set-up", heartbeat=0)
    channel = connection.channel()
    channel.exchange_declare("bench.fan", "fanout")  # declared first: the tap binds it at once
    channel.exchange_declare("bench.cpu", "fanout")
    channel.exchange_declare("bench.lat", "fanout")
    unaccounted = 0
    try:
        # 1. the limit: a bare consumer draining a pre-filled queue
        channel.queue_declare("bench.drain")
        prefill = publish(amqp_url, vhost, "", "bench.drain", n, processes=plan.publishers)
        wait_queue_length(channel, "bench.drain", n)
        bare, _, _ = consume(amqp_url, vhost, "bench.drain", n)
        table.add("bare pika consumer, drain (the limit)", f"{bare:,.0f} msg/s",
                  f"{n:,} msgs pre-filled at {prefill:,.0f} msg/s")  # fmt: skip

        # 2a. bindings mode, unpaced publisher processes into a tapped fanout exchange
        viewer = Viewer(dashboard.url, cookie, vhost=vhost, mode="bindings", exchange="bench.fan")
        viewer.wait_running(plan.consumers)
        offered = publish(amqp_url, vhost, "bench.fan", "", n, processes=plan.publishers)
        viewer.wait_taken(n)
        rate = viewer.ingest_rate(n)
        gap = viewer.unaccounted(n)
        unaccounted += gap
        figure = f"{rate:,.0f} msg/s ({rate / bare:.2f}x drain)"
        table.add("tap ingest, bindings, 1 JSON viewer", figure,
                  f"offered {offered:,.0f} msg/s by {plan.publishers} publishers"
                  f"{' (below the drain: ingest bounded by them)' if offered < bare else ''}; "
                  f"viewer dropped {viewer.viewer_dropped():,}; unaccounted {gap}")  # fmt: skip
        viewer.close()

        # 2c. the tap draining its own queue, pre-filled: the processes doing the tap's work
        # are stopped (SIGSTOP) while N messages are published into the tapped exchange,
        # then let go. No publisher bounds this: it is the tap's drain, next to the bare one.
        viewer = Viewer(dashboard.url, cookie, vhost=vhost, mode="bindings", exchange="bench.fan")
        viewer.wait_running(plan.consumers)
        before = viewer.taken()
        working = with_children(pids)
        for pid in working:
            os.kill(pid, signal.SIGSTOP)
        try:
            publish(amqp_url, vhost, "bench.fan", "", n, processes=plan.publishers)
        finally:
            for pid in working:
                os.kill(pid, signal.SIGCONT)
        viewer.wait_taken(before + n)
        rate = viewer.ingest_rate(before + n, since=before)
        gap = viewer.unaccounted(n, before)
        unaccounted += gap
        figure = f"{rate:,.0f} msg/s ({rate / bare:.2f}x drain)"
        table.add("tap drain, bindings, 1 JSON viewer", figure,
                  f"its queue pre-filled with {n:,} while its processes were stopped; "
                  f"viewer dropped {viewer.viewer_dropped():,}; unaccounted {gap}")  # fmt: skip
        viewer.close()

        # 2b. firehose mode: every delivery of a draining consumer is traced
        channel.queue_declare("bench.fire")
        publish(amqp_url, vhost, "", "bench.fire", n, processes=plan.publishers)
        wait_queue_length(channel, "bench.fire", n)
        viewer = Viewer(dashboard.url, cookie, vhost=vhost, mode="firehose", kind="deliver")
        viewer.wait_running(plan.consumers)
        # "running" is the tap's consumer; tracing is switched on beside it. Deliveries made
        # before the broker traces are never seen: wait for tracing, then drain.
        deadline = time.monotonic() + 30
        from flows.runtime import runtime

        api = runtime().management_client
        while not api.vhost(vhost).tracing and time.monotonic() < deadline:
            time.sleep(0.05)
        traced, _, _ = consume(amqp_url, vhost, "bench.fire", n)
        viewer.wait(lambda: viewer.taken() >= n)
        rate = viewer.ingest_rate(n)
        gap = viewer.unaccounted(viewer.taken())  # publishes while tracing count too
        unaccounted += gap
        figure = f"{rate:,.0f} msg/s ({rate / traced:.2f}x traced drain, {rate / bare:.2f}x drain)"
        table.add("tap ingest, firehose, 1 JSON viewer", figure,
                  f"traced drain {traced:,.0f} msg/s; unaccounted {gap}")  # fmt: skip
        viewer.close()
        time.sleep(2)  # the firehose tap stops and switches tracing off again

        # 3. CPU per message at one fixed offered rate, bare consumer vs the dashboard
        count = int(plan.cpu_rate * plan.cpu_seconds)
        channel.queue_declare("bench.cpu.bare")
        channel.queue_bind("bench.cpu.bare", "bench.cpu")
        processes = max(1, math.ceil(plan.cpu_rate / 10_000))

        def paced() -> None:
            publish(amqp_url, vhost, "bench.cpu", "", count, processes=processes,
                    rate=plan.cpu_rate)  # fmt: skip

        _, bare_cpu, bare_rss_kib = consume(amqp_url, vhost, "bench.cpu.bare", count, paced)
        # The same, reading every 10 ms: the tap's own way of reading while it holds a
        # batch (flows.tap.tap.GATHER_S), which makes pika's part cheaper per message.
        _, gathering_cpu, _ = consume(
            amqp_url, vhost, "bench.cpu.bare", count, paced, gather_s=0.01
        )
        channel.queue_delete("bench.cpu.bare")
        viewer = Viewer(dashboard.url, cookie, vhost=vhost, mode="bindings", exchange="bench.cpu")
        viewer.wait_running(plan.consumers)
        before = viewer.taken()
        working = with_children(pids)  # the tap's consumer processes too
        profilers = [Profiler(plan.profile, pid, index) for index, pid in enumerate(working)]
        cpu_before = sum(map(process_cpu_s, working))
        paced()
        viewer.wait_taken(before + count)
        tap_cpu = sum(map(process_cpu_s, working)) - cpu_before
        for profiler in profilers:
            profiler.stop()
        unaccounted += viewer.unaccounted(count, before)
        viewer.close()
        bare_us, tap_us = 1e6 * bare_cpu / count, 1e6 * tap_cpu / count
        gathering_us = 1e6 * gathering_cpu / count
        table.add(f"CPU per message at {plan.cpu_rate:,} msg/s, bare consumer", f"{bare_us:.1f} us",
                  f"{count:,} msgs; process CPU (getrusage)")  # fmt: skip
        table.add(f"CPU per message at {plan.cpu_rate:,} msg/s, bare consumer reading every 10 ms",
                  f"{gathering_us:.1f} us",
                  f"the tap reads so while it holds a batch; tap {tap_us / gathering_us:.2f}x "
                  "this one")  # fmt: skip
        table.add(f"CPU per message at {plan.cpu_rate:,} msg/s, dashboard + tap",
                  f"{tap_us:.1f} us ({tap_us / bare_us:.2f}x bare)",
                  f"{' + '.join(['daphne', 'tap process'][:len(pids)])}"
                  f"{' + consumer processes' if len(working) > len(pids) else ''} "
                  "CPU (/proc stat), 1 JSON viewer taking every event")  # fmt: skip

        # 4. latency, publish time in a header, the viewer taking every event
        for rate_per_s, seconds in plan.latency:
            total = int(rate_per_s * seconds)
            viewer = Viewer(
                dashboard.url, cookie, vhost=vhost, mode="bindings", exchange="bench.lat"
            )
            viewer.wait_running(plan.consumers)
            before = viewer.taken()
            achieved = publish(amqp_url, vhost, "bench.lat", "", total,
                               processes=max(1, math.ceil(rate_per_s / 10_000)),
                               rate=rate_per_s)  # fmt: skip
            viewer.wait_taken(before + total)
            gap = viewer.unaccounted(total, before)
            unaccounted += gap
            ms = sorted(1000 * value for value in viewer.latencies)
            q = statistics.quantiles(ms, n=100) if len(ms) >= 2 else [math.nan] * 99
            table.add(f"publish-to-viewer latency at {rate_per_s:,}/s",
                      f"p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, p99 {q[98]:.1f} ms",
                      f"{len(ms):,} of {total:,} seen; offered {achieved:,.0f}/s; "
                      f"unaccounted {gap}")  # fmt: skip
            viewer.close()

        # 7. a sustained flood, one JSON viewer taking every event, pages loaded meanwhile
        rate_per_s, seconds = plan.sustained
        total = int(rate_per_s * seconds)
        viewer = Viewer(dashboard.url, cookie, vhost=vhost, mode="bindings", exchange="bench.lat")
        viewer.wait_running(plan.consumers)
        before = viewer.taken()
        flood = threading.Thread(
            target=publish,
            args=(amqp_url, vhost, "bench.lat", "", total),
            kwargs={"processes": max(1, math.ceil(rate_per_s / 10_000)), "rate": rate_per_s},
        )
        started = time.monotonic()
        flood.start()
        page_loads = []
        while flood.is_alive():
            page_loads.append(page_load_s(dashboard.url, cookie, vhost))
            time.sleep(max(0.0, 1.0 - page_loads[-1]))
        achieved = total / (time.monotonic() - started)
        viewer.wait_taken(before + total)
        peak_mb = sum(map(peak_rss_mb, with_children(pids)))  # while its consumers still run
        gap = viewer.unaccounted(total, before)
        unaccounted += gap
        viewer.close()
        loads_ms = sorted(1000 * value for value in page_loads) or [math.nan]
        table.add(f"sustained {rate_per_s:,} msg/s for {seconds:.0f} s, 1 JSON viewer",
                  f"unaccounted {gap}",
                  f"offered {achieved:,.0f}/s; "
                  f"viewer dropped {viewer.viewer_dropped():,}")  # fmt: skip
        table.add("page load during the flood (/live/)",
                  f"median {statistics.median(loads_ms):.0f} ms, max {loads_ms[-1]:.0f} ms",
                  f"{len(page_loads)} loads, one a second")  # fmt: skip

        # 5, 6. memory, and what no count explains
        table.add("peak memory, dashboard + tap", f"{peak_mb:.0f} MB",
                  "VmHWM, summed over the processes")  # fmt: skip
        table.add("peak memory, bare consumer", f"{bare_rss_kib / 1024:.0f} MB", "ru_maxrss")
        table.add("unaccounted messages, all runs", f"{unaccounted}", "must be 0")
    finally:
        if connection.is_open:
            connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=None, help="N for the drain and ingest")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy the CPU phase")
    parser.add_argument(
        "--tap-process", action="store_true", help="the tap in its own process, behind Redis"
    )
    parser.add_argument("--consumers", type=int, default=None, help="FLOWS_TAP_CONSUMERS")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.messages:
        plan = Plan(**{**plan.__dict__, "messages": args.messages})
    if args.profile:
        plan = Plan(**{**plan.__dict__, "profile": args.profile})
    if args.tap_process:
        plan = Plan(**{**plan.__dict__, "tap_process": True})
    if args.consumers:
        plan = Plan(**{**plan.__dict__, "consumers": args.consumers})
    _harness.setup_django("tap-bench-")
    table = run(plan)
    table.print()


if __name__ == "__main__":
    main()
