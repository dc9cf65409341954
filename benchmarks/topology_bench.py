"""Topology benchmark: a 1,000-exchange / 5,000-queue / 10,000-binding vhost, API and page.

Run (the machine's 2 cores are shared, so benchmarks take turns):

    flock /tmp/flows-bench.lock .venv/bin/python benchmarks/topology_bench.py

What it does, on the real broker and a real daphne serving the dashboard:

1. a scratch vhost filled in one call to the management API's definitions import
   (`POST /api/definitions/<vhost>`): exchanges of all four types (some with alternate
   exchanges), queues (some with dead-letter exchanges), bindings exchange-to-queue with
   a few exchange-to-exchange;
2. `GET /api/topology` through the dashboard, several times (signed in): the first read
   of the vhost, then the following ones (served from the last read while a background
   read refreshes it); and the read itself in-process (`load_topology`);
3. Chromium opens /topology/ on the vhost: time until the page is interactive (the
   graph script mounted, the first topology read, the "search or focus" prompt shown),
   then a search and a focus on an exchange, timed until drawn;
4. deletes the vhost.

Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from urllib.parse import quote

import _harness

_harness.setup_django("topology-bench-")

from django.conf import settings  # noqa: E402

from flows.broker.management_api import ManagementClient  # noqa: E402
from flows.topology.reading import load_topology  # noqa: E402
from tests.support.broker_admin import import_definitions  # noqa: E402

TYPES = ("direct", "topic", "fanout", "headers")


def definitions(exchanges: int, queues: int, bindings: int) -> dict:
    """A deterministic topology of the requested size."""
    exchange_names = [f"ex-{n:04d}" for n in range(exchanges)]
    queue_names = [f"q-{n:05d}" for n in range(queues)]
    exchange_items = []
    for n, name in enumerate(exchange_names):
        arguments = (
            {"alternate-exchange": exchange_names[(n + 1) % exchanges]} if n % 50 == 0 else {}
        )
        exchange_items.append(
            {
                "name": name,
                "type": TYPES[n % 4],
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": arguments,
            }
        )
    queue_items = []
    for n, name in enumerate(queue_names):
        arguments = {"x-dead-letter-exchange": exchange_names[n % exchanges]} if n % 25 == 0 else {}
        queue_items.append(
            {"name": name, "durable": False, "auto_delete": False, "arguments": arguments}
        )
    binding_items = []
    exchange_to_exchange = bindings // 20
    for n in range(bindings):
        source_index = n % exchanges
        source = exchange_names[source_index]
        kind = TYPES[source_index % 4]
        arguments = {"x-match": "any", "region": f"r{n % 7}"} if kind == "headers" else {}
        key = f"k.{n % 13}.#" if kind == "topic" else f"k{n % 13}"
        if n < exchange_to_exchange:
            destination, destination_type = (
                exchange_names[(source_index + 7) % exchanges],
                "exchange",
            )
        else:
            destination, destination_type = queue_names[(n * 7) % queues], "queue"
        binding_items.append(
            {
                "source": source,
                "destination": destination,
                "destination_type": destination_type,
                "routing_key": key,
                "arguments": arguments,
            }
        )
    return {"exchanges": exchange_items, "queues": queue_items, "bindings": binding_items}


def timed(action) -> tuple[float, object]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.2f} s, "
        f"min {min(values):.2f} s, max {max(values):.2f} s (n={len(values)})"
    )


class Rows(list):
    """The result table, also printed line by line as figures come in."""

    def append(self, row: tuple[str, str]) -> None:
        super().append(row)
        print(f"  {row[0]}: {row[1]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=1000)
    parser.add_argument("--queues", type=int, default=5000)
    parser.add_argument("--bindings", type=int, default=10_000)
    parser.add_argument("--api-runs", type=int, default=6)
    parser.add_argument("--page-runs", type=int, default=3)
    args = parser.parse_args()

    _harness.bench_user()
    # Making and dropping thousands of queues takes the broker a while: a patient client.
    client = ManagementClient(
        settings.RABBITMQ_API_URL,
        settings.RABBITMQ_API_USER,
        settings.RABBITMQ_API_PASSWORD,
        timeout=600,
    )
    rows = Rows()
    scratch = _harness.ScratchVhost(
        client, prefix="topology-", description="topology benchmark (deleted when it ends)"
    )
    try:
        with scratch as vhost:
            measure(args, client, vhost, rows)
    finally:
        if scratch.delete_s is not None:
            rows.append(("delete the vhost", f"{scratch.delete_s:.1f} s"))
        client.close()

    width = max(len(name) for name, _ in rows)
    print(f"\nTopology benchmark, vhost {scratch.name!r}\n")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


def measure(args: argparse.Namespace, client: ManagementClient, vhost: str, rows: Rows) -> None:
    body = definitions(args.exchanges, args.queues, args.bindings)
    load_s, _ = timed(lambda: import_definitions(client, vhost, body))
    rows.append(
        (
            "build the vhost (definitions import, one POST)",
            f"{load_s:.1f} s for {args.exchanges} exchanges, {args.queues} queues, "
            f"{args.bindings} bindings",
        )
    )
    topology = load_topology(vhost, client=client)
    rows.append(
        (
            "read back",
            f"{len(topology.exchanges)} exchanges (incl. amq.* and default), "
            f"{len(topology.queues)} queues, {len(topology.bindings)} bindings",
        )
    )
    in_process = [timed(lambda: load_topology(vhost, client=client))[0] for _ in range(3)]
    rows.append(("load_topology() in-process (5 API lists in parallel)", summary(in_process)))

    with (
        _harness.dashboard() as server,
        _harness.signed_in_page(server.url, viewport={"width": 1500, "height": 900}) as page,
    ):
        context = page.context
        api_url = f"{server.url}/api/topology?vhost={quote(vhost, safe='')}"
        api_times, size = [], 0
        for _ in range(args.api_runs):
            seconds, response = timed(lambda: context.request.get(api_url, timeout=120_000))
            assert response.status == 200, response.text()[:300]
            size = len(response.body())
            api_times.append(seconds)
        # The first read of a slow vhost is synchronous; after it, requests are served
        # from the last read while a background read refreshes it (flows.topology.cache).
        rows.append(("GET /api/topology, first (cold) read", f"{api_times[0]:.2f} s"))
        rows.append(("GET /api/topology, then (target < 2 s)", summary(api_times[1:])))
        rows.append(("  its JSON body", f"{size / 1e6:.1f} MB"))
        etag = response.headers["etag"]
        not_modified = [
            timed(
                lambda: context.request.get(
                    api_url, headers={"If-None-Match": etag}, timeout=120_000
                )
            )[0]
            for _ in range(3)
        ]
        rows.append(("  unchanged, with If-None-Match (304)", summary(not_modified)))

        tti, search_times, focus_times = [], [], []
        for _ in range(args.page_runs):
            page = context.new_page()
            start = time.perf_counter()
            page.goto(f"{server.url}/topology/?vhost={quote(vhost, safe='')}")
            page.wait_for_function("document.body.dataset.graphReady === 'true'", timeout=120_000)
            page.locator(".flows-graph-overlay").wait_for(state="visible")
            tti.append(time.perf_counter() - start)
            prompt = page.locator(".flows-graph-overlay").text_content()

            start = time.perf_counter()
            page.get_by_label("Search by name").fill("q-0012")
            page.wait_for_function(
                "window.topologyGraph.cy.getElementById('queue:q-00120').nonempty()"
            )
            search_times.append(time.perf_counter() - start)

            start = time.perf_counter()
            page.evaluate("window.topologyGraph.focus('exchange:ex-0001')")
            page.wait_for_function(
                "window.topologyGraph.focused === 'exchange:ex-0001' && "
                "window.topologyGraph.cy.getElementById('exchange:ex-0001').nonempty()"
            )
            focus_times.append(time.perf_counter() - start)
            drawn = page.evaluate("window.topologyGraph.cy.nodes().length")
            page.close()
        rows.append(("/topology/ time to interactive (target < 5 s)", summary(tti)))
        rows.append(("  what it shows", json.dumps(prompt)))
        rows.append(("search 'q-0012' until drawn (200 ms debounce incl.)", summary(search_times)))
        rows.append((f"focus on an exchange until drawn ({drawn} nodes)", summary(focus_times)))


if __name__ == "__main__":
    main()
