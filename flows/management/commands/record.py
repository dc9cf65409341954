"""`manage.py record --vhost V [--hours H] [--max-mb M] [--firehose] [--user NAME]`.

Records a vhost in this process, as the live page's "Record this vhost" does in the web
process: the recorder (`flows.recording.recorder`) joins the vhost's tap and stores its events
in the database until the time (default 24 h) or the size (default 1 GiB) is up, or until
it is stopped (Ctrl-C, SIGTERM, or "Stop recording" on the live page, from any process).

As `--user NAME` it records with that account's rights (the admin role: `flows.record`);
without, as the shell's operator, who may record any vhost, and who switches tracing on (to
see deliveries too) only with an explicit `--firehose`, as `manage.py tail` does.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows import access


class Operator:
    """The shell user: every permission but the firehose, unless asked for."""

    is_authenticated = True
    is_superuser = True  # no vhost limits (flows.access.vhost_patterns)
    pk = None

    def __init__(self, *, firehose: bool) -> None:
        self.username = "manage.py record"
        self._firehose = firehose

    def get_username(self) -> str:
        return self.username

    def has_perm(self, name: str) -> bool:
        return self._firehose or name != access.permission_name(access.Action.USE_FIREHOSE)


class Command(BaseCommand):
    help = "Record what a vhost's tap sees into the database, bounded by time and size."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--vhost", required=True)
        parser.add_argument("--hours", help="how long at most (default 24)")
        parser.add_argument("--max-mb", help="how many MiB of events at most (default 1024)")
        parser.add_argument("--firehose", action="store_true", help="switch tracing on for it")
        parser.add_argument("--user", help="record as this dashboard account")

    def handle(self, *args: Any, **options: Any) -> None:
        from flows.recording import store

        try:
            hours, max_bytes = store.parse_bounds(options["hours"], options["max_mb"])
        except store.BoundsError as bad:
            raise CommandError(f"--{bad.field.replace('_', '-')}: {bad.message}") from bad
        user: Any = Operator(firehose=options["firehose"])
        if options["user"]:
            from django.contrib.auth import get_user_model

            try:
                user = get_user_model().objects.get_by_natural_key(options["user"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"--user: no account {options['user']!r}") from None
        reason = access.refusal(user, access.Action.RECORD, options["vhost"])
        if reason is not None:
            raise CommandError(reason.message)
        recording = store.start(vhost=options["vhost"], user=user, hours=hours, max_bytes=max_bytes)
        sys.stderr.write(
            f"recording {recording.pk} of {recording.vhost!r} until {recording.ends_at:%c} "
            f"or {max_bytes} bytes\n"
        )
        asyncio.run(self._record(recording.pk, recording.vhost, user))
        recording.refresh_from_db()
        sys.stderr.write(
            f"recording {recording.pk}: {recording.state} ({recording.message}), "
            f"{recording.events_stored} events, {recording.bytes_stored} bytes\n"
        )
        if recording.state == recording.FAILED:
            raise CommandError(recording.message)

    async def _record(self, recording_id: int, vhost: str, user: Any) -> None:
        from flows.runtime import runtime

        task = runtime().recorders.start(recording_id, vhost, user)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass
        finally:
            await runtime().astop()
