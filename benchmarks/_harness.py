"""What every benchmark sets up the same way: Django on a throwaway database, a vhost of its
own on the real broker, a real dashboard (daphne) and a signed-in Chromium.

A benchmark calls `setup_django()` before it imports anything that needs Django:

    import _harness

    _harness.setup_django("live-bench-")

    from flows.broker.amqp import ...  # noqa: E402
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from playwright.sync_api import Page

    from flows.broker.management_api import ManagementClient
    from tests.support.live_server import LiveDashboard

BENCH_USERNAME = "bench"
BENCH_PASSWORD = "bench password, long enough"  # noqa: S105 - a throwaway user in a temp DB


def setup_django(prefix: str) -> Path:
    """Configure Django on a fresh SQLite database in a temporary state directory."""
    state_dir = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, state_dir, ignore_errors=True)
    os.environ["FLOWS_STATE_DIR"] = str(state_dir)
    os.environ["DATABASE_URL"] = f"sqlite:///{state_dir / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    import django

    django.setup()
    return state_dir


def bench_user(*, superuser: bool = False) -> User:
    """Migrate the benchmark's database and create the user the browser signs in as: an
    admin (`flows.access`; without a role a page only says so), or a superuser."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from flows.access import set_role

    call_command("migrate", interactive=False, verbosity=0)
    user, _ = get_user_model().objects.get_or_create(
        username=BENCH_USERNAME, defaults={"is_superuser": superuser, "is_staff": superuser}
    )
    user.set_password(BENCH_PASSWORD)
    user.save()
    set_role(user, "admin")
    return user


def session_cookie(user: User) -> str:
    """A `Cookie` header value signing a websocket client in as `user`."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


class ScratchVhost:
    """A vhost of the benchmark's own, deleted when the `with` block ends.

    After the block, `delete_s` says how long the deletion took (thousands of queues take
    the broker a while).
    """

    def __init__(self, client: ManagementClient, *, description: str, prefix: str = "") -> None:
        self.client = client
        self.name = f"flows-bench-{prefix}{uuid.uuid4().hex[:8]}"
        self.description = description
        self.delete_s: float | None = None

    def __enter__(self) -> str:
        from django.conf import settings

        from tests.support.broker_admin import create_vhost_for

        # The management API's user and the AMQP user (the same one, guest, by default).
        amqp_user = unquote(urlsplit(settings.AMQP_URL).username or "guest")
        create_vhost_for(
            self.client, self.name, [self.client.username, amqp_user], description=self.description
        )
        return self.name

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        started = time.perf_counter()
        self.client.remove_vhost(self.name)
        self.delete_s = time.perf_counter() - started


@contextmanager
def dashboard(**env: str) -> Iterator[LiveDashboard]:
    """A dashboard served by daphne on the benchmark's database, stopped afterwards."""
    from tests.support.live_server import LiveDashboard

    server = LiveDashboard(database_url=os.environ["DATABASE_URL"], env=env).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def signed_in_page(base_url: str, **context_options: Any) -> Iterator[Page]:
    """Chromium, signed in as the bench user; `page.context` opens more pages."""
    from playwright.sync_api import sync_playwright

    from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_context(**context_options).new_page()
            page.goto(f"{base_url}/accounts/login/")
            page.get_by_label("Username").fill(BENCH_USERNAME)
            page.get_by_label("Password").fill(BENCH_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{base_url}/")
            yield page
        finally:
            browser.close()
