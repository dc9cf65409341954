"""A flood on the real broker: several publisher processes publishing as fast as they can.

Processes, not threads: one process's GIL would cap the flood well below what the tap must
take. Each publisher has its own pika connection and publishes to one exchange for a few
seconds; `flood` returns how many messages they published in all, once every one of them
has finished (the broker has had all of them by then: each closes its connection cleanly).
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass


@dataclass(frozen=True)
class Flood:
    amqp_url: str
    vhost: str
    exchange: str
    seconds: float
    body: bytes = b'{"flood": true}'
    routing_key: str = "flood"


def _publish_for(flood: Flood, counts) -> None:  # in the publisher process
    import time
    from urllib.parse import quote, urlsplit

    import pika

    # The URL's own vhost, if any, is replaced (as the dashboard does: pages choose it).
    url = urlsplit(flood.amqp_url)._replace(path="/" + quote(flood.vhost, safe="")).geturl()
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    published = 0
    deadline = time.monotonic() + flood.seconds
    while time.monotonic() < deadline:
        for _ in range(200):
            channel.basic_publish(flood.exchange, flood.routing_key, flood.body)
        published += 200
        connection.process_data_events(0)  # heartbeats, and the broker's flow control
    connection.close()
    counts.put(published)


def flood(flood: Flood, *, publishers: int = 3) -> int:
    """Run `publishers` processes publishing for `flood.seconds`; the messages they sent."""
    context = multiprocessing.get_context("spawn")  # nothing of the test process inherited
    counts = context.Queue()
    processes = [
        context.Process(target=_publish_for, args=(flood, counts), daemon=True)
        for _ in range(publishers)
    ]
    for process in processes:
        process.start()
    total = sum(counts.get(timeout=flood.seconds + 60) for _ in processes)
    for process in processes:
        process.join(timeout=10)
        if process.exitcode != 0:
            raise RuntimeError(f"a publisher exited with {process.exitcode}")
    return total
