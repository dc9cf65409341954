"""Live page benchmark: publish -> row visible in Chromium, and the page staying bounded.

Run (the machine's 2 cores are shared, so benchmarks take turns):

    flock /tmp/flows-bench.lock .venv/bin/python benchmarks/live_bench.py

What it does, on the real broker and a real daphne serving the dashboard:

1. a scratch vhost with a topic exchange and two bound queues, tracing on (firehose mode,
   so the broker says where each message went; `--mode bindings`: the tap's bindings);
2. Chromium signs in and opens /live/ on it; a MutationObserver stamps the moment each row
   enters the page (Date.now(), the same clock as the publisher's time.time());
3. latency: N messages at a steady rate (default 100/s), each with its own routing key;
   publish -> row visible, p50/p95/p99/max;
4. bounded: M more messages (default 100,000) as fast as one pika publisher goes; then the
   page's row count, DOM node count and JS heap (after a forced GC), compared with the
   figures before the flood.

`--background RATE` (e.g. 10000): during the latency phase, paced publisher processes send
RATE msg/s of other traffic (`noise.*`) through the same exchange, and the page filters on
`routing_key=lat.#`: the few messages watched among thousands filtered out (issue 13).

Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import statistics
import threading
import time
from urllib.parse import urlencode

import _harness

_harness.setup_django("live-bench-")

import pika  # noqa: E402
import tap_bench  # noqa: E402  (its paced publisher processes)
from django.conf import settings  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from flows.broker.amqp import connection_parameters  # noqa: E402
from flows.runtime import runtime  # noqa: E402

OBSERVER = """() => {
  window.seen = {};
  const observer = new MutationObserver((mutations) => {
    const now = Date.now();
    for (const mutation of mutations) {
      for (const node of mutation.addedNodes) {
        if (node.nodeType !== 1 || !node.classList.contains("live-row")) continue;
        const key = node.querySelector(".c-key");
        if (!key || !key.textContent.startsWith("lat.")) continue;
        const tapped = JSON.parse(node.dataset.event).received_at * 1000;
        window.seen[key.textContent] = [now, tapped];
      }
    }
  });
  observer.observe(document.getElementById("feed"), { childList: true });
}"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def page_figures(page, cdp) -> dict[str, float]:
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {
        "rows": page.locator("#feed .live-row").count(),
        "in_document": page.evaluate("document.getElementsByTagName('*').length"),
        # Chromium's count includes detached nodes the collector has not reclaimed yet.
        "dom_nodes": metrics.get("Nodes", 0),
        "js_heap_mb": metrics.get("JSHeapUsedSize", 0) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="messages/s for latency")
    parser.add_argument("--latency-messages", type=int, default=1000)
    parser.add_argument("--flood", type=int, default=100_000)
    parser.add_argument("--series", action="store_true", help="latency per second of the run")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after the flood")
    parser.add_argument(
        "--background", type=int, default=0, help="msg/s of other traffic, filtered out"
    )
    parser.add_argument("--consumers", type=int, default=1, help="FLOWS_TAP_CONSUMERS")
    parser.add_argument(
        "--mode", choices=("firehose", "bindings"), default="firehose", help="the tap's mode"
    )
    args = parser.parse_args()

    _harness.bench_user()
    client = runtime().management_client
    with (
        _harness.ScratchVhost(client, description="live benchmark (deleted afterwards)") as vhost,
        _harness.dashboard(FLOWS_TAP_CONSUMERS=str(args.consumers)) as server,
    ):
        try:
            figures = measure(args, client, vhost, server.url)
        finally:
            client.set_tracing(vhost, enabled=False)
    report(args, *figures)


def measure(args: argparse.Namespace, client, vhost: str, base_url: str) -> tuple:
    connection = pika.BlockingConnection(connection_parameters(vhost=vhost, purpose="live-bench"))
    channel = connection.channel()
    channel.exchange_declare("bench", "topic")
    for queue, key in (("bench-a", "lat.#"), ("bench-b", "#")):
        channel.queue_declare(queue, arguments={"x-max-length": 1000})
        channel.queue_bind(queue, "bench", key)
    if args.mode == "firehose":
        client.set_tracing(vhost, enabled=True)

    query = {"vhost": vhost, "mode": args.mode}
    if args.background:
        query["routing_key"] = "lat.#"  # the other traffic is filtered out, tap-side
    with _harness.signed_in_page(base_url) as page:
        page.goto(f"{base_url}/live/?{urlencode(query)}")
        # The badge sits in the status chip, folded away unless opened: its text, not its
        # visibility, says the tap runs.
        expect(page.get_by_test_id("tap-state")).to_have_text("tap: running", timeout=20_000)
        page.evaluate(OBSERVER)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")

        # --- latency at a steady rate (with other traffic beside it, if asked) --------------
        background = None
        if args.background:
            seconds = args.latency_messages / args.rate + 2
            background = threading.Thread(
                target=tap_bench.publish,
                args=(settings.AMQP_URL, vhost, "bench", "noise.x", int(args.background * seconds)),
                kwargs={"processes": math.ceil(args.background / 10_000), "rate": args.background},
            )
            background.start()
            time.sleep(1)  # the publishers are up to speed
        sent: dict[str, float] = {}
        interval = 1.0 / args.rate
        start = time.monotonic()
        for n in range(args.latency_messages):
            due = start + n * interval
            while (now := time.monotonic()) < due:
                connection.sleep(min(due - now, 0.005))
            key = f"lat.{n}"
            sent[key] = time.time() * 1000
            channel.basic_publish("bench", key, b'{"n": %d}' % n)
        connection.process_data_events(0)
        if background is not None:
            background.join()
        page.wait_for_timeout(2000)
        seen = page.evaluate("window.seen")
        before = page_figures(page, cdp)

        # --- the flood, in two halves: the page must not grow between them -------------------
        stages = []
        publish_s = 0.0
        for half in (args.flood // 2, args.flood - args.flood // 2):
            flood_start = time.monotonic()
            for n in range(half):
                channel.basic_publish("bench", f"flood.{n % 100}", b"x" * 100)
                if n % 2000 == 0:
                    connection.process_data_events(0)
            publish_s += time.monotonic() - flood_start
            page.wait_for_timeout(args.settle * 1000)
            counters = {
                name: page.locator(f'[data-counter="{name}"]').inner_text()
                for name in ("total", "shown", "filtered_out", "sampled_out", "dropped")
            }
            stages.append((counters, page_figures(page, cdp)))
    connection.close()
    return sent, seen, before, stages, publish_s


def report(args: argparse.Namespace, sent, seen, before, stages, publish_s: float) -> None:
    latencies = [seen[key][0] - at for key, at in sent.items() if key in seen]
    to_tap = [seen[key][1] - at for key, at in sent.items() if key in seen]
    print(f"latency: {args.latency_messages} messages at {args.rate:.0f}/s, {args.mode} mode")
    if args.background:
        print(f"  beside {args.background:,} msg/s of other traffic, filtered out by the page")
    print(f"  consumers on the tap queue: {args.consumers} (FLOWS_TAP_CONSUMERS)")
    print(f"  rows seen: {len(latencies)}/{len(sent)}")
    if latencies:
        print(
            "  publish -> row visible (ms): "
            f"p50 {statistics.median(latencies):.0f}, p95 {percentile(latencies, 95):.0f}, "
            f"p99 {percentile(latencies, 99):.0f}, max {max(latencies):.0f}"
        )
        print(
            "  of which publish -> tap received (ms): "
            f"p50 {statistics.median(to_tap):.0f}, p95 {percentile(to_tap, 95):.0f}"
        )
    if args.series:
        per_second = int(args.rate)
        ordered = [seen[k][0] - sent[k] for k in sent if k in seen]
        for start in range(0, len(ordered), per_second):
            chunk = ordered[start : start + per_second]
            print(
                f"  second {start // per_second}: "
                f"max {max(chunk):.0f} ms, p50 {statistics.median(chunk):.0f}"
            )
    print(f"flood: {args.flood} messages published in {publish_s:.1f} s")
    figures_at = [("before the flood", {}, before)]
    figures_at += [(f"after {i + 1}/2 of it", c, f) for i, (c, f) in enumerate(stages)]
    for label, counters, figures in figures_at:
        print(
            f"  {label}: {figures['rows']} rows, {figures['in_document']} elements in the "
            f"document, {figures['dom_nodes']:.0f} DOM nodes (Chromium), "
            f"{figures['js_heap_mb']:.1f} MB JS heap"
        )
        if counters:
            print(f"    counters: {counters}")


if __name__ == "__main__":
    main()
