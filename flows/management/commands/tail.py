"""`manage.py tail --vhost V [filters] [--json] [--firehose]`: what the tap sees, in a terminal.

Runs the dashboard's tap (`flows.tap.tap.Tap`) in this process, with the live page's filters
(`--exchange`, `--routing-key`, `--queue`, `--header k=v`, `--body`, `--kind`,
`--unroutable`), and prints one line per event: readable, or with `--json` the tap's event
JSON exactly as `/ws/tap/` sends it, one object per line (JSON Lines). That is the format
of the live page's export, and what `manage.py replay` reads. Nothing is sampled out.

The tap's state and warnings go to stderr (`tapping ...: running` once it is bound). Ctrl-C
or SIGTERM stops it; its queue goes with it, and with `--firehose` tracing is put back.
"""

from __future__ import annotations

import json
import queue
import signal
import sys
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Print the messages the tap sees on a vhost (one line each, or JSON Lines)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--vhost", required=True)
        parser.add_argument("--exchange", help="exactly this exchange (amq.default: the default)")
        parser.add_argument("--routing-key", help="a topic pattern: food.*, #.error")
        parser.add_argument("--queue", help="routed to or delivered from this queue")
        parser.add_argument("--header", help="key=value, or key alone")
        parser.add_argument("--body", help="a body substring (case-insensitive)")
        parser.add_argument("--kind", choices=("publish", "deliver"))
        parser.add_argument("--unroutable", action="store_true", help="only the unroutable")
        parser.add_argument("--json", action="store_true", help="the tap's event JSON per line")
        parser.add_argument(
            "--firehose",
            action="store_true",
            help="watch with the firehose (switches tracing on for the vhost while it runs; "
            "needs an administrator management user)",
        )
        parser.add_argument("--count", type=int, help="stop after this many events")

    def handle(self, *args: Any, **options: Any) -> None:
        from flows.tap.filters import EventFilter, FilterError
        from flows.tap.viewer import ViewerStream

        params = {
            name: options[name]
            for name in ("exchange", "routing_key", "queue", "header", "body", "kind")
            if options[name] is not None
        }
        if options["unroutable"]:
            params["unroutable"] = "1"
        try:
            stream = ViewerStream(EventFilter.from_params(params), None)
        except FilterError as exc:
            raise CommandError(f"--{exc.field.replace('_', '-')}: {exc.message}") from exc
        self._tail(options["vhost"], stream, options)

    def _tail(self, vhost: str, stream: Any, options: dict[str, Any]) -> None:
        from flows.runtime import runtime
        from flows.tap.lines import event_line
        from flows.tap.modes import CaptureMode
        from flows.tap.tap import Tap, TapSettings

        batches: queue.Queue[tuple[list[Any], dict[str, Any]]] = queue.Queue()
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        mode: CaptureMode = "firehose" if options["firehose"] else "bindings"
        tap = Tap(
            vhost,
            mode,
            lambda events, status: batches.put((list(events), status)),
            tap_settings=TapSettings.from_django(),
        )
        as_json, limit = options["json"], options["count"]
        printed = 0
        last_state = None
        tap.start()
        try:
            while not stop.is_set():
                try:
                    events, status = batches.get(timeout=0.25)
                except queue.Empty:
                    if not tap.running:
                        break
                    continue
                state = (status.get("state"), status.get("error"))
                if state != last_state:
                    last_state = state
                    self._say_status(vhost, mode, status)
                for event in stream.process(events):
                    line = json.dumps(event, ensure_ascii=False) if as_json else event_line(event)
                    self.stdout.write(line)
                    printed += 1
                    if limit is not None and printed >= limit:
                        stop.set()
                        break
                self.stdout.flush()
        finally:
            tap.stop()
            runtime().stop()
        if last_state and last_state[0] == "error":
            raise CommandError(last_state[1] or "the tap failed")

    def _say_status(self, vhost: str, mode: str, status: dict[str, Any]) -> None:
        message = f"tapping {vhost!r} ({mode}): {status.get('state')}"
        if status.get("error"):
            message += f": {status['error']}"
        coverage = status.get("coverage") or {}
        for warning in coverage.get("warnings") or []:
            message += f"\n  note: {warning}"
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
