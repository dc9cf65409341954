"""`manage.py replay FILE --vhost V [--speed X] [--exchange-map old=new]`: publish a JSON
Lines capture again, with its original timing.

FILE holds tap events, one JSON object per line: what `manage.py tail --json` prints and
the live page's "Export JSONL" downloads (`-` reads standard input). Publish events are sent
again in order, each at its original offset from the first (`received_at`), divided by
`--speed` (`--speed 0`: as fast as confirms allow); deliveries are skipped. Each message
keeps its routing key, headers with their AMQP types, properties and body bytes
(`flows.publishing.again`), and goes through the publishing path the dashboard uses
(field checks, `FLOWS_PUBLISH_EXCHANGES`, publisher confirms, mandatory).

Every line is checked before the first message is sent: a file with a bad line publishes
nothing.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser


@dataclass(frozen=True)
class Planned:
    line: int
    offset_s: float  # after the first message, at speed 1
    request: Any  # flows.publishing.fields.PublishRequest


class Command(BaseCommand):
    help = "Publish the messages of a JSON Lines capture (tail --json, the live export) again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="a JSON Lines file of tap events, or - for stdin")
        parser.add_argument("--vhost", required=True, help="the vhost to publish onto")
        parser.add_argument(
            "--speed", type=float, default=1.0, help="2 = twice as fast; 0 = no waiting"
        )
        parser.add_argument(
            "--exchange-map",
            action="append",
            default=[],
            metavar="OLD=NEW",
            help="publish what went to exchange OLD to NEW (amq.default: the default exchange)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from flows import access

        if access.read_only():
            raise CommandError(access.READ_ONLY)
        if options["speed"] < 0:
            raise CommandError("--speed must be 0 (no waiting) or more")
        exchange_map = _exchange_map(options["exchange_map"])
        path = options["file"]
        try:
            if path == "-":
                plan, skipped = _plan(sys.stdin, options["vhost"], exchange_map)
            else:
                with open(path, encoding="utf-8") as source:
                    plan, skipped = _plan(source, options["vhost"], exchange_map)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
        self._replay(plan, skipped, options["vhost"], options["speed"])

    def _replay(self, plan: list[Planned], skipped: int, vhost: str, speed: float) -> None:
        from flows.publishing.publisher import PublishFailed
        from flows.runtime import runtime

        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        counts = {"routed": 0, "unroutable": 0, "nacked": 0}
        failed = 0
        started = time.monotonic()
        try:
            for item in plan:
                if speed:
                    wait = started + item.offset_s / speed - time.monotonic()
                    if wait > 0 and stop.wait(wait):
                        break
                if stop.is_set():
                    break
                try:
                    outcome = runtime().publishers.publish(item.request)
                except PublishFailed as exc:
                    failed += 1
                    self.stderr.write(f"line {item.line}: not published: {exc.message}")
                    continue
                counts[outcome.status] += 1
                if outcome.status != "routed":
                    self.stderr.write(f"line {item.line}: {outcome.status}")
        finally:
            runtime().stop()
        sent = sum(counts.values())
        # One entry per replay, as for a repeat run: who (this process), where, how it went.
        from flows import audit

        audit.record(
            f"manage.py replay (pid {os.getpid()})",
            audit.REPLAY,
            vhost=vhost,
            details={**counts, "failed": failed, "planned": len(plan), "speed": speed},
            ok=not failed and not stop.is_set(),
            message="" if not failed else f"{failed} not published",
        )
        self.stdout.write(
            f"replayed {sent} of {len(plan)} messages onto {vhost!r}: "
            f"{counts['routed']} routed, {counts['unroutable']} unroutable, "
            f"{counts['nacked']} nacked, {failed} failed; {skipped} deliveries skipped"
        )
        if failed or stop.is_set():
            raise CommandError("not every message was published")


def _exchange_map(pairs: list[str]) -> dict[str, str]:
    from flows.topology.records import DEFAULT_EXCHANGE_ALIAS

    mapping = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep:
            raise CommandError(f"--exchange-map {pair!r}: write OLD=NEW")
        mapping[old if old != DEFAULT_EXCHANGE_ALIAS else ""] = (
            new if new != DEFAULT_EXCHANGE_ALIAS else ""
        )
    return mapping


def _plan(source: TextIO, vhost: str, exchange_map: dict[str, str]) -> tuple[list[Planned], int]:
    """Every publish of the file checked and ready, or CommandError naming each bad line."""
    from flows.publishing.again import NotRepublishable, publish_fields
    from flows.publishing.fields import PublishInvalid
    from flows.publishing.policy import PublishForbidden
    from flows.publishing.service import check_fields

    plan: list[Planned] = []
    problems: list[str] = []
    skipped = 0
    first_at: float | None = None
    for number, text in enumerate(source, start=1):
        if not text.strip():
            continue
        try:
            event = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not JSON ({exc.msg})")
            continue
        if not isinstance(event, dict):
            problems.append(f"line {number}: not a JSON object")
            continue
        if event.get("kind", "publish") != "publish":
            skipped += 1
            continue
        try:
            fields = publish_fields(event, exchange_map=exchange_map)
            request = check_fields({**fields, "vhost": vhost}, generate_message_id=False)
        except NotRepublishable as exc:
            problems.append(f"line {number}: {exc}")
            continue
        except PublishInvalid as exc:
            details = "; ".join(f"{name}: {message}" for name, message in exc.errors.items())
            problems.append(f"line {number}: {details}")
            continue
        except PublishForbidden as exc:
            problems.append(f"line {number}: {exc.message}")
            continue
        at = event.get("received_at")
        at = float(at) if isinstance(at, int | float) and not isinstance(at, bool) else None
        if at is not None and first_at is None:
            first_at = at
        offset = max(0.0, at - first_at) if at is not None and first_at is not None else 0.0
        # Out-of-order times (two captures joined) never send a message before the last one.
        offset = max(offset, plan[-1].offset_s if plan else 0.0)
        plan.append(Planned(line=number, offset_s=offset, request=request))
    if problems:
        shown = problems[:20] + (
            [f"... and {len(problems) - 20} more"] if len(problems) > 20 else []
        )
        raise CommandError("Nothing was published:\n  " + "\n  ".join(shown))
    return plan, skipped
