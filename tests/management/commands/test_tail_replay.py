"""`manage.py tail` prints what the tap sees (readable, or the tap's event JSON per line) and
`manage.py replay` publishes such a capture again: `tail --json` of a flow on one vhost,
replayed onto another, reproduces its messages there, in order."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from django.core.management import CommandError, call_command
from pika.compat import long

from flows.broker.management_api import ManagementClient
from flows.live.rows import build_row
from flows.publishing import publisher  # noqa: F401  (floats travel as doubles)
from flows.tap.events import prettify
from flows.tap.lines import event_line
from tests.support.live_server import REPO_ROOT, stop_process
from tests.support.tap_events import delivered, published, published_via_bindings
from tests.support.tap_harness import amqp_channel, tap_queues
from tests.support.vhosts import make_vhost
from tests.support.waiting import StopWaiting, eventually

FLOW: list[tuple[str, bytes, dict[str, Any]]] = [
    ("vanilla.icecream", b'{"scoops":2}', {"n": 1}),
    ("food.pizza", b"\x00\xffbinary", {"ratio": 0.5, "big": long(2**40)}),
    ("chocolate.icecream", "héllo".encode(), {"when": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)}),
    ("food.soup", b"", {"price": decimal.Decimal("4.5"), "tags": ["hot", 2]}),
    ("mint.icecream", b"[1, 2, 3]", {"meta": {"a": 1, "b": {"c": True}}}),
]


def declare_food(vhost: str) -> None:
    with amqp_channel(vhost) as channel:
        channel.exchange_declare("food", "topic")
        channel.queue_declare("all")
        channel.queue_bind("all", "food", "#")
        channel.queue_declare("icecream")
        channel.queue_bind("icecream", "food", "*.icecream")


def drain(vhost: str, queue: str) -> list[tuple[str, str, bytes, bytes, str | None]]:
    """(exchange, routing key, headers on the wire, body, message id) of each message."""
    taken = []
    with amqp_channel(vhost) as channel:
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            pieces: list[bytes] = []
            pika.data.encode_table(pieces, properties.headers or {})
            taken.append(
                (method.exchange, method.routing_key, b"".join(pieces), body, properties.message_id)
            )


class Tail:
    """`manage.py tail` running, its output in files."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.out = tempfile.NamedTemporaryFile(prefix="tail-", suffix=".jsonl", delete=False)  # noqa: SIM115
        self.err = tempfile.NamedTemporaryFile(prefix="tail-", suffix=".err", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "tail", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=self.out,
            stderr=self.err,
        )

    def lines(self) -> list[str]:
        return Path(self.out.name).read_text(encoding="utf-8").splitlines()

    def errors(self) -> str:
        return Path(self.err.name).read_text(errors="replace")

    def wait_running(self) -> None:
        def running() -> bool:
            if self.process.poll() is not None:
                raise StopWaiting(f"tail exited with {self.process.returncode}: {self.errors()}")
            assert ": running" in self.errors(), self.errors()
            return True

        eventually(running, what="the tail's tap running", timeout=60, interval=0.1)

    def wait_lines(self, n: int) -> list[str]:
        eventually(lambda: len(self.lines()) >= n, what=f"{n} lines from tail")
        return self.lines()

    def stop(self) -> int:
        stop_process(self.process, timeout=20)
        self.out.close()
        self.err.close()
        return self.process.returncode


@pytest.fixture
def other_vhost(patient_client: ManagementClient) -> Iterator[str]:
    name = make_vhost(patient_client, f"flows-test-{uuid.uuid4().hex[:10]}")
    yield name
    patient_client.remove_vhost(name)


def test_tail_json_replayed_onto_another_vhost_reproduces_the_flow(
    scratch_vhost: str, other_vhost: str, management_client: ManagementClient
) -> None:
    for vhost in (scratch_vhost, other_vhost):
        declare_food(vhost)
    everything = Tail("--vhost", scratch_vhost, "--json")
    icecream = Tail("--vhost", scratch_vhost, "--routing-key", "*.icecream")
    try:
        everything.wait_running()
        icecream.wait_running()
        with amqp_channel(scratch_vhost) as channel:
            for index, (key, body, headers) in enumerate(FLOW):
                properties = pika.BasicProperties(message_id=f"m-{index}", headers=headers)
                channel.basic_publish("food", key, body, properties)
        captured = everything.wait_lines(len(FLOW))
        readable = icecream.wait_lines(3)
    finally:
        assert everything.stop() == 0, everything.errors()
        assert icecream.stop() == 0, icecream.errors()
    assert tap_queues(management_client, scratch_vhost) == []  # the taps left nothing
    events = [json.loads(line) for line in captured]
    assert [event["routing_key"] for event in events] == [key for key, _, _ in FLOW]
    assert [line.split()[3] for line in readable] == [
        "vanilla.icecream", "chocolate.icecream", "mint.icecream",
    ]  # fmt: skip
    assert all(line.split()[2] == "food" for line in readable)

    capture = Path(tempfile.mkdtemp()) / "capture.jsonl"
    capture.write_text("\n".join(captured) + "\n", encoding="utf-8")
    replay = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "replay",
            str(capture),
            "--vhost",
            other_vhost,
            "--speed",
            "20",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stderr
    assert f"replayed {len(FLOW)} of {len(FLOW)} messages" in replay.stdout
    original = drain(scratch_vhost, "all")
    assert drain(other_vhost, "all") == original  # same keys, header types, bodies, order
    assert [m[4] for m in original] == [f"m-{n}" for n in range(len(FLOW))]
    assert [m[1] for m in drain(other_vhost, "icecream")] == [
        "vanilla.icecream", "chocolate.icecream", "mint.icecream",
    ]  # fmt: skip


def write_capture(events: list[dict[str, Any]]) -> str:
    """The live page's export of rows for `events`: each row's event, one per line."""
    path = Path(tempfile.mkdtemp()) / "capture.jsonl"
    lines = [build_row(prettify(event)).event_json for event in events]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def test_replay_maps_exchanges_and_skips_deliveries(db, scratch_vhost: str, fresh_runtime) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("food.v2", "topic")
        channel.queue_declare("all")
        channel.queue_bind("all", "food.v2", "#")
    capture = write_capture(
        [
            published(1, exchange="food", routing_key="a.b", body=b"one", pretty=False),
            delivered(2, queue="elsewhere"),
            published(3, exchange="food", routing_key="c.d", body=b'{"n":2}', pretty=False),
        ]
    )
    out = io.StringIO()
    call_command(
        "replay", capture, "--vhost", scratch_vhost, "--speed", "0",
        "--exchange-map", "food=food.v2", stdout=out,
    )  # fmt: skip
    assert "replayed 2 of 2 messages" in out.getvalue()
    assert "1 deliveries skipped" in out.getvalue()
    assert [(m[1], m[3]) for m in drain(scratch_vhost, "all")] == [
        ("a.b", b"one"),
        ("c.d", b'{"n":2}'),
    ]
    # A write to the broker: audited, once for the replay.
    from flows import audit
    from flows.models import AuditEntry

    entry = AuditEntry.objects.get(action=audit.REPLAY)
    assert (entry.vhost, entry.ok, entry.details["routed"]) == (scratch_vhost, True, 2)
    assert entry.username.startswith("manage.py replay")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["{not json"], "line 1: not JSON"),
        (['"a string"'], "line 1: not a JSON object"),
        ([json.dumps(published(1)), json.dumps({**published(2), "routing_key": "k" * 300})],
         "line 2: routing_key"),
    ],
)  # fmt: skip
def test_replay_checks_every_line_before_publishing_any(
    scratch_vhost: str, fresh_runtime, lines: list[str], message: str, tmp_path: Path
) -> None:
    declare_food(scratch_vhost)
    capture = tmp_path / "bad.jsonl"
    capture.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CommandError, match=message):
        call_command("replay", str(capture), "--vhost", scratch_vhost)
    assert drain(scratch_vhost, "all") == []


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (published(routed_queues=["pizza", "all"], body=b'{"a":1}'),
         "22:50:00.250  publish  food  food.pizza  -> pizza, all  7 B  {\"a\": 1}"),
        (published(routed_queues=[], body=b""),
         "22:50:00.250  publish  food  food.pizza  -> UNROUTABLE  0 B"),
        (published_via_bindings(exchange="", routing_key="q", body=b"\x1b[31mred"),
         "22:50:00.250  publish  (default exchange)  q  8 B  \\x1b[31mred"),
        (delivered(queue="pizza", connection="c1", channel=2, redelivered=True, body=b"\xff"),
         "22:50:00.250  deliver  queue pizza  -> c1 ch 2  redelivered  1 B  base64:/w=="),
    ],
)  # fmt: skip
def test_a_readable_line_per_event(event, expected) -> None:
    assert event_line(event) == expected
