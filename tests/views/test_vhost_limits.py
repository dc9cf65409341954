"""Per-vhost limits: a limited user sees, lists, watches and publishes on their vhosts only."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from flows.broker.management_api import ManagementClient
from flows.models import VhostLimit
from flows.runtime import runtime
from tests.support.accounts import make_user
from tests.support.communicators import connect, run_with_tap
from tests.support.publishing import DemoTopology
from tests.support.vhosts import make_vhost


@dataclass(frozen=True)
class Vhosts:
    mine: str
    other: str


@pytest.fixture(scope="module")
def vhosts(patient_client: ManagementClient) -> Iterator[Vhosts]:
    tag = uuid.uuid4().hex[:8]
    pair = Vhosts(
        mine=make_vhost(patient_client, f"flows-test-mine-{tag}"),
        other=make_vhost(patient_client, f"flows-test-other-{tag}"),
    )
    for vhost in (pair.mine, pair.other):
        patient_client.declare_queue(vhost, "inbox", durable=False)
    yield pair
    for vhost in (pair.mine, pair.other):
        patient_client.remove_vhost(vhost)


@pytest.fixture
def limited(client: Client, db, vhosts: Vhosts) -> Client:
    """A publisher limited to the first vhost (by the pattern `flows-test-mine-*`)."""
    client.force_login(make_user("lim", role="publisher", vhosts=["flows-test-mine-*"]))
    return client


def test_the_vhost_selector_and_the_overview_list_only_the_users_vhosts(limited, vhosts):
    html = limited.get("/", {"vhost": vhosts.mine}).content.decode()
    assert f'<option value="{vhosts.mine}" selected>' in html
    assert vhosts.other not in html
    assert '<option value="/"' not in html


def test_without_a_choice_the_first_of_the_users_vhosts_is_shown(limited, vhosts):
    response = limited.get("/topology/")
    assert response.status_code == 200
    assert response.context["vhost"].startswith("flows-test-mine-")  # not "/", not refused


@pytest.mark.parametrize(
    "path",
    [
        "/topology/?vhost={v}",
        "/live/?vhost={v}",
        "/publish/?vhost={v}",
        "/live/consumption?vhost={v}",
        "/topology/details?vhost={v}&kind=queue&name=inbox",
        "/demo/topics/?vhost={v}",
    ],
)
def test_pages_of_another_vhost_are_refused(limited, vhosts, path):
    allowed = limited.get(path.replace("{v}", quote(vhosts.mine, safe="")))
    refused = limited.get(path.replace("{v}", quote(vhosts.other, safe="")))
    assert allowed.status_code == 200
    assert refused.status_code == 403
    assert "limited to vhosts matching flows-test-mine-*" in refused.content.decode()


@pytest.mark.parametrize(
    "path", ["/api/topology?vhost={v}", "/api/route?vhost={v}&exchange=&routing_key=inbox"]
)
def test_the_api_refuses_another_vhost(limited, vhosts, path):
    assert limited.get(path.replace("{v}", quote(vhosts.mine, safe=""))).status_code == 200
    refused = limited.get(path.replace("{v}", quote(vhosts.other, safe="")))
    assert refused.status_code == 403
    assert "limited to vhosts" in refused.json()["error"]


def test_publishing_to_another_vhost_is_refused_on_the_vhost_field(limited, vhosts, fresh_runtime):
    def publish(vhost: str):
        body = {"vhost": vhost, "exchange": "", "routing_key": "inbox", "body": "x"}
        return limited.post("/api/publish", json.dumps(body), content_type="application/json")

    refused = publish(vhosts.other)
    assert refused.status_code == 403
    assert list(refused.json()["fields"]) == ["vhost"]
    assert publish(vhosts.mine).json()["status"] == "routed"
    depth = DemoTopology(vhost=vhosts.other, client=runtime().management_client).depth
    assert depth("inbox") == 0  # a passive declare: exact, unlike the statistics


def test_a_group_limit_applies_to_every_member(client, db, vhosts):
    VhostLimit.objects.create(group=Group.objects.get(name="viewer"), patterns=[vhosts.mine])
    client.force_login(make_user("member", role="viewer"))
    assert client.get("/api/topology", {"vhost": vhosts.other}).status_code == 403
    assert client.get("/api/topology", {"vhost": vhosts.mine}).status_code == 200


def test_watching_another_vhost_is_refused_with_4403(transactional_db, vhosts):
    user = make_user("watcher", role="viewer", vhosts=[vhosts.mine])
    outcomes: list = []

    async def run() -> None:
        for vhost in (vhosts.other, vhosts.mine):
            socket = connect(f"/ws/tap/?vhost={quote(vhost, safe='')}", user)
            await socket.connect()
            outcomes.append(json.loads(await socket.receive_from(timeout=30)))
            if outcomes[-1]["type"] == "error":
                outcomes.append(await socket.receive_output(timeout=10))
            await socket.disconnect()

    run_with_tap(run)
    error, closed, status = outcomes
    assert error == {
        "type": "error",
        "field": "vhost",
        "message": f"Your account is limited to vhosts matching {vhosts.mine}: "
        f"not {vhosts.other!r}.",
    }
    assert closed == {"type": "websocket.close", "code": 4403}
    assert status["type"] == "status" and status["vhost"] == vhosts.mine
