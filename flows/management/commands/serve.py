"""`python manage.py serve`: what the README's first command runs.

Checks that a broker answers (and says how to get one if not), applies migrations,
prints a one-time sign-in link when nobody could sign in with a password, says where the
tap runs, then serves HTTP and websockets with daphne:

- with the in-memory channel layer (no `CHANNEL_LAYER_URL`), the taps run inside the web
  process: serve replaces itself with daphne, which stops the dashboard's runtime on
  SIGTERM and SIGINT (`dashboard/asgi.py`);
- with a Redis channel layer, the taps run in a process of their own: serve stays, as the
  supervisor (`flows.supervisor`) of daphne and `manage.py tap`, restarting the tap process
  when it dies and stopping both on SIGTERM and SIGINT. `--tap-elsewhere` leaves the tap
  process out, for a deployment that runs `manage.py tap` on its own.

`--demo NAME` is the speaker's one command: it loads the scenario before serving (as
`demo load` does), points the sign-in link at the scenario's page, and has the served
process start the scenario's publishers and workers as soon as it is up
(`flows.demo.service.start_demo_from_environment`), so messages flow before the browser
opens. They stop with the dashboard; the scenario stays loaded (`demo unload` removes it).
"""

from __future__ import annotations

import os
import sys
from urllib.parse import quote, urlencode

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from flows.broker.errors import BrokerError
from flows.broker.health import HOW_TO_GET_A_BROKER, broker_problems
from flows.broker.redact import mask_url
from flows.demo.service import START_DEMO_ENV
from flows.login_links import demo_user, issue_login_link, needs_login_link
from flows.runtime import runtime
from flows.supervisor import supervise


class Command(BaseCommand):
    help = "Check the broker, migrate, print a sign-in link if needed, and serve with daphne."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--skip-broker-check", action="store_true", help="serve even if no broker answers"
        )
        parser.add_argument(
            "--tap-elsewhere",
            action="store_true",
            help="with a Redis channel layer: do not start `manage.py tap` (one runs elsewhere)",
        )
        parser.add_argument(
            "--demo",
            metavar="NAME",
            help="load this demo scenario and run its publishers and workers (see `demo list`)",
        )
        parser.add_argument(
            "--demo-vhost", metavar="VHOST", help="the scenario's vhost (default: demo-NAME)"
        )

    def handle(
        self,
        *args: object,
        host: str,
        port: int,
        skip_broker_check: bool,
        tap_elsewhere: bool,
        demo: str | None,
        demo_vhost: str | None,
        **options: object,
    ) -> None:
        tap_in_process = _tap_runs_in_a_process()
        if not skip_broker_check:
            problems = broker_problems()
            if problems:
                raise CommandError("\n".join([*problems, "", HOW_TO_GET_A_BROKER]))
        call_command("migrate", interactive=False, verbosity=0)
        # Listening on every interface: the link is still opened on this machine.
        shown_host = "127.0.0.1" if host in {"0.0.0.0", "::"} else host  # noqa: S104
        base_url = f"http://{shown_host}:{port}"
        start_page = "/"
        if demo is not None:
            start_page = self._load_demo(demo, demo_vhost)
        if needs_login_link():
            token = issue_login_link(demo_user())
            after = "" if start_page == "/" else "?" + urlencode({"next": start_page})
            self.stdout.write(
                "\nNo account with a password yet. Sign in once with this link "
                "(or create one with `python manage.py createsuperuser`):\n\n"
                f"    {base_url}/accounts/link/{token}/{after}\n"
            )
        supervised = tap_in_process and not tap_elsewhere
        self.stdout.write(_where_the_tap_runs(in_a_process=tap_in_process, supervised=supervised))
        self.stdout.write(f"Serving the dashboard at {base_url}{start_page} (Ctrl-C to stop)\n")
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
        if not supervised:
            os.execv(sys.executable, daphne)
        connections.close_all()  # the supervisor serves nothing: keep no connection open
        tap = [sys.executable, str(settings.BASE_DIR / "manage.py"), "tap"]
        # The demo's publishers and workers are the web process's to start, not the tap's.
        tap_env = {k: v for k, v in os.environ.items() if k != START_DEMO_ENV}
        status = supervise(daphne, tap, say=self._say, tap_env=tap_env)
        if status:
            sys.exit(status)

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def _load_demo(self, name: str, vhost: str | None) -> str:
        """Load scenario `name`, ask the served process to run it; return its page's path."""
        from flows.demo.loading import LoadRefused, load
        from flows.demo.scenario import ScenarioInvalid, UnknownScenario, load_scenario

        try:
            scenario = load_scenario(name)
            loaded = load(scenario, vhost=vhost)
        except (UnknownScenario, ScenarioInvalid) as exc:
            raise CommandError(str(exc)) from exc
        except LoadRefused as exc:
            raise CommandError(exc.message) from exc
        except BrokerError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(loaded.describe())
        # Read by the process exec'd below, once it serves (the environment survives exec).
        os.environ[START_DEMO_ENV] = f"{scenario.name}\n{loaded.vhost}"
        return f"/demo/{quote(scenario.name)}/?" + urlencode({"vhost": loaded.vhost})


def _tap_runs_in_a_process() -> bool:
    """Where `FLOWS_TAP_RUNS_IN` puts the taps; a process needs a channel layer it can share."""
    in_memory = settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer")
    if settings.FLOWS_TAP_RUNS_IN != "process":
        return False
    if in_memory:
        raise CommandError(
            "FLOWS_TAP_RUNS_IN=process needs a channel layer both processes share: set "
            "CHANNEL_LAYER_URL=redis://... (or leave FLOWS_TAP_RUNS_IN unset)."
        )
    return True


def _where_the_tap_runs(*, in_a_process: bool, supervised: bool) -> str:
    """serve's line saying where the tap runs, and through what."""
    if not in_a_process:
        return (
            "The tap runs inside the web process (in-memory channel layer; with "
            "CHANNEL_LAYER_URL=redis://... it runs in a process of its own).\n"
        )
    hosts = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    layer = mask_url(str(hosts[0]["address"]))
    if supervised:
        return (
            f"The tap runs in its own process (`manage.py tap`, started and restarted by "
            f"serve), reached through Redis at {layer}.\n"
        )
    return (
        f"The tap runs in a `manage.py tap` started elsewhere (--tap-elsewhere), reached "
        f"through Redis at {layer}.\n"
    )
