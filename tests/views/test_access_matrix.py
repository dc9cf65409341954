"""Every page, `/api/` endpoint and websocket, for every role: who gets in, and what the others
get (`tests/support/access_matrix.py` holds the table), against the real broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import URLPattern, URLResolver, resolve

from flows.broker.management_api import ManagementClient
from flows.models import PublishTemplate
from flows.runtime import runtime
from tests.support.access_matrix import (
    ADMIN,
    ANONYMOUS,
    API,
    CALLERS,
    NO_ROLE,
    PAGES,
    SUPERUSER,
    UNROUTABLE,
    WEBSOCKETS,
    Endpoint,
    websocket_expected,
)
from tests.support.accounts import make_user
from tests.support.communicators import connect, run_with_tap
from tests.support.vhosts import make_vhost

# The routes no role decides: signing in, the JSON 404 of any other /api/ path (covered by
# `/api/no-such-endpoint`), and an audience link's view, whose token is its credential
# (tests/views/test_audience.py).
NOT_ROLE_GATED = {"login-link", "api-not-found", "watch", "watch-topology"}


@pytest.fixture(scope="module")
def matrix_vhost(patient_client: ManagementClient) -> Iterator[str]:
    """A vhost with an exchange named as the topics scenario's, so loading it is refused."""
    vhost = make_vhost(patient_client, f"flows-test-{uuid.uuid4().hex[:10]}")
    patient_client.declare_exchange(vhost, "food", exchange_type="topic")
    yield vhost
    patient_client.remove_vhost(vhost)


def account(caller: str):
    if caller == ANONYMOUS:
        return None
    if caller == SUPERUSER:
        return make_user("matrix-root", role=None, is_superuser=True)
    return make_user(
        f"matrix-{caller.replace(' ', '-')}", role=None if caller == NO_ROLE else caller
    )


def send(client: Client, endpoint: Endpoint, vhost: str, template: int):
    url = endpoint.url(vhost).replace("{template}", str(template))
    body = endpoint.body(vhost)
    if endpoint.method == "GET":
        return client.get(url)
    if endpoint.json:
        return client.post(url, data=json.dumps(body), content_type="application/json")
    return client.post(url, data=body)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", PAGES + API, ids=str)
def test_each_role_gets_what_its_role_allows(
    client: Client, db, fresh_runtime, matrix_vhost: str, endpoint: Endpoint, caller: str
) -> None:
    user = account(caller)
    if user is not None:
        client.force_login(user)
    owner = make_user("template-owner", role="publisher")
    template = PublishTemplate.objects.create(
        name="shared", owner=owner, shared=True, fields={**UNROUTABLE, "vhost": matrix_vhost}
    )
    response = send(client, endpoint, matrix_vhost, template.pk)
    assert response.status_code == endpoint.expected(caller), response.content.decode()[:500]
    if response.status_code == 403:
        text = response.json()["error"] if endpoint.api else response.content.decode()
        assert "no role" in text or "may not" in text
    if caller == ANONYMOUS and not endpoint.api:
        assert response["Location"].startswith("/accounts/login/")


def dashboard_routes(patterns=None) -> Iterator[URLPattern]:
    """Every route of `flows.urls` (sign-in's are Django's own, in `flows.urls_accounts`)."""
    from flows import urls

    for pattern in urls.urlpatterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from dashboard_routes(pattern.url_patterns)
        else:
            yield pattern


def test_the_matrix_has_a_row_for_every_route() -> None:
    covered = {
        resolve(endpoint.url("v").split("?")[0].replace("{template}", "1")).url_name
        for endpoint in PAGES + API
    }
    routes = {route.name for route in dashboard_routes()}
    assert routes - NOT_ROLE_GATED == covered - NOT_ROLE_GATED


def test_every_route_declares_the_action_it_takes() -> None:
    undeclared = [
        route.name
        for route in dashboard_routes()
        if route.name not in NOT_ROLE_GATED
        and getattr(route.callback, "access_action", None) is None
    ]
    assert undeclared == []


# --- websockets ---------------------------------------------------------------------------------


async def websocket_outcome(path: str, user, vhost: str) -> int | str:
    """ "open" when the socket joined the vhost's tap, else the code it was closed with."""
    communicator = connect(path, user or AnonymousUser())
    connected, _ = await communicator.connect(timeout=30)
    assert connected
    await communicator.receive_from(timeout=30)  # the status, or why not
    manager = runtime().tap_manager()
    if manager.viewers.get(vhost):
        await communicator.disconnect()
        return "open"
    closed = await communicator.receive_output(timeout=10)
    assert closed["type"] == "websocket.close", closed
    return closed["code"]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("path", "least"), WEBSOCKETS)
def test_each_role_may_watch_what_its_role_allows(
    transactional_db, matrix_vhost: str, management_client, path: str, least: str, caller: str
) -> None:
    from urllib.parse import quote

    user = account(caller)
    url = path.replace("{v}", quote(matrix_vhost, safe=""))
    outcome: list[int | str] = []

    async def run() -> None:
        outcome.append(await websocket_outcome(url, user, matrix_vhost))

    run_with_tap(run)
    assert outcome == [websocket_expected(least, caller)]
    if "firehose" in path and caller not in (ADMIN, SUPERUSER):
        assert management_client.vhost(matrix_vhost).tracing is False
