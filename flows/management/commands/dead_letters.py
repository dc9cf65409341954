"""`manage.py dead_letters show|move`: a dead-letter queue's messages by reason and origin,
and moving them back where they came from (or to an exchange), from a shell.

    manage.py dead_letters show --vhost V --queue Q
    manage.py dead_letters move --vhost V --queue Q [--reason R] [--from-queue O]
                                [--to-exchange X --routing-key K] [--limit N] [--rate R]

`move` prints one line per message moved (`moved N/TOTAL`), then how it ended; it exits
non-zero when the move stopped on an error. Ctrl-C or SIGTERM cancels between two messages.
Even kill -9 loses nothing (see flows/dead_letters/moving.py): at most one duplicate.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Show a dead-letter queue's messages by reason and origin, or move them."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        show = sub.add_parser("show", help="group the queue's messages by reason and origin")
        move = sub.add_parser("move", help="move messages back to their origin, or elsewhere")
        for each in (show, move):
            each.add_argument("--vhost", required=True)
            each.add_argument("--queue", required=True, help="the dead-letter queue")
        move.add_argument("--reason", help="only messages dead-lettered for this reason")
        move.add_argument("--from-queue", help="only messages that died in this queue")
        move.add_argument("--to-exchange", help="publish here instead of back to the origin")
        move.add_argument("--routing-key", default="", help="with --to-exchange")
        move.add_argument("--limit", type=int, help="look at most at this many messages")
        move.add_argument("--rate", type=float, help="at most this many messages per second")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "show":
            self._show(options["vhost"], options["queue"])
        else:
            self._move(options)

    def _show(self, vhost: str, queue: str) -> None:
        from flows.broker.errors import BrokerError
        from flows.dead_letters.reading import CannotRead, read_dead_letters
        from flows.topology.records import exchange_label

        try:
            snapshot = read_dead_letters(vhost, queue)
        except CannotRead as exc:
            raise CommandError(exc.message) from exc
        except BrokerError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(snapshot.how)
        for group in snapshot.groups:
            origin = group.origin
            if origin is None:
                self.stdout.write(f"{group.messages:>8}  no x-death (not dead-lettered)")
                continue
            self.stdout.write(
                f"{group.messages:>8}  {origin.reason:<14} from queue {origin.queue!r} "
                f"(published to {exchange_label(origin.exchange)} with "
                f"{', '.join(map(repr, origin.routing_keys)) or 'no key'})"
            )

    def _move(self, options: dict[str, Any]) -> None:
        from django.conf import settings

        from flows import access
        from flows.dead_letters.grouping import Selection
        from flows.dead_letters.moving import (
            GUARANTEE,
            MoveTarget,
            check_target,
            move_messages,
            record_finish,
            record_start,
        )

        if access.read_only():
            raise CommandError(access.READ_ONLY)
        if options["routing_key"] and not options["to_exchange"]:
            raise CommandError("--routing-key goes with --to-exchange")
        target = MoveTarget(exchange=options["to_exchange"], routing_key=options["routing_key"])
        selection = Selection(reason=options["reason"], queue=options["from_queue"])
        patterns = list(settings.FLOWS_PUBLISH_EXCHANGES)
        refusal = check_target(target, patterns)
        if refusal:
            raise CommandError(refusal)
        vhost, queue = options["vhost"], options["queue"]
        cancel = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: cancel.set())
        record_id = record_start(
            user=f"manage.py dead_letters (pid {os.getpid()})",
            vhost=vhost,
            queue=queue,
            target=target,
            selection=selection,
        )
        self.stdout.write(f"Moving {selection.describe()} of {queue!r} {target.describe()}.")
        self.stdout.write(GUARANTEE)
        self.stdout.flush()

        def moved(progress) -> None:
            self.stdout.write(f"moved {progress.moved}/{progress.total}")
            self.stdout.flush()

        progress = move_messages(
            vhost=vhost,
            queue=queue,
            target=target,
            selection=selection,
            allowed_patterns=patterns,
            cancel=cancel,
            limit=options["limit"],
            rate=options["rate"],
            on_moved=moved,
        )
        record_finish(record_id, progress)
        self.stdout.write(
            f"{progress.state}: moved {progress.moved}, left {progress.skipped} "
            f"(not selected or without x-death), of {progress.total}"
        )
        if progress.state == "error":
            raise CommandError(progress.error or "the move stopped")
