"""`python manage.py serve`: what the README's first command runs.

Checks that a broker answers (and says how to get one if not), applies migrations,
prints a one-time sign-in link when nobody could sign in with a password, then
replaces itself with daphne serving HTTP and websockets. daphne is then the process: it
stops the dashboard's runtime on SIGTERM and SIGINT (`dashboard/asgi.py`).
"""

from __future__ import annotations

import os
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows.broker.health import HOW_TO_GET_A_BROKER, broker_problems
from flows.login_links import demo_user, issue_login_link, needs_login_link
from flows.runtime import runtime


class Command(BaseCommand):
    help = "Check the broker, migrate, print a sign-in link if needed, and serve with daphne."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--skip-broker-check", action="store_true", help="serve even if no broker answers"
        )

    def handle(
        self, *args: object, host: str, port: int, skip_broker_check: bool, **options: object
    ) -> None:
        if not skip_broker_check:
            problems = broker_problems()
            if problems:
                raise CommandError("\n".join([*problems, "", HOW_TO_GET_A_BROKER]))
        call_command("migrate", interactive=False, verbosity=0)
        # Listening on every interface: the link is still opened on this machine.
        shown_host = "127.0.0.1" if host in {"0.0.0.0", "::"} else host  # noqa: S104
        base_url = f"http://{shown_host}:{port}"
        if needs_login_link():
            token = issue_login_link(demo_user())
            self.stdout.write(
                "\nNo account with a password yet. Sign in once with this link "
                "(or create one with `python manage.py createsuperuser`):\n\n"
                f"    {base_url}/accounts/link/{token}/\n"
            )
        self.stdout.write(f"Serving the dashboard at {base_url}/ (Ctrl-C to stop)\n")
        sys.stdout.flush()
        daphne = [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            host,
            "-p",
            str(port),
            "--proxy-headers",
            "dashboard.asgi:application",
        ]
        runtime().stop()  # exec skips the stop at exit: close what the checks opened
        os.execv(sys.executable, daphne)
