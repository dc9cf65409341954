"""Hypothesis on what the OpenAPI fuzz does not reach: the publish form and the demo controls
(form posts), and the websockets' query strings.

The caller is a publisher limited to a vhost the broker has not, so whatever the generator
sends, nothing is published, started or tapped: the forms and sockets can only check it and
answer. They must answer, never with a 500; a socket either accepts or closes with 4400 and a
frame naming the parameter (4403 for the vhost outside the user's limits).
"""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.publishing.fields import HEADER_ROW_KEYS, PUBLISH_FIELDS
from flows.websockets.close_codes import CLOSE_BAD_REQUEST, CLOSE_FORBIDDEN
from tests.support.accounts import make_user
from tests.support.communicators import connect, run_with_tap

FUZZ = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
# A form's text: printable and not, markup, huge and empty.
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["", "0", "-1", "1e309", "nan", "<b>x</b>", "{", "[]", "persistent", "x" * 300]
    ),
)
# Every field the publish path reads, and one header row as the form sends it.
PUBLISH_FORM_FIELDS = [
    *PUBLISH_FIELDS,
    *(f"headers-0-{key}" for key in HEADER_ROW_KEYS),
]
DEMO_FORM_FIELDS = [
    "vhost",
    "action",
    "publisher",
    "rate",
    "group",
    "count",
    "prefetch",
    "failure_rate",
    "exchange",
    "routing_key",
    "body",
]
DEMO_PATHS = ["run", "publisher", "workers", "step", "publish", "controls"]
SOCKET_PARAMS = [
    "vhost",
    "mode",
    "kind",
    "exchange",
    "queue",
    "routing_key",
    "header",
    "body",
    "unroutable",
    "max_rate",
    "format",
]


def form(names: list[str]) -> st.SearchStrategy[dict[str, str]]:
    known = st.dictionaries(st.sampled_from(names), TEXT, max_size=len(names))
    return st.one_of(known, st.dictionaries(st.text(max_size=10), TEXT, max_size=4))


@pytest.fixture
def publisher(client: Client, db: None) -> Client:
    vhost = f"flows-fuzz-nothing-{uuid.uuid4().hex[:6]}"  # not on the broker
    client.force_login(make_user("form-fuzzer", role="publisher", vhosts=[vhost]))
    return client


def test_the_publish_form_answers_any_form_data_without_a_500(publisher: Client) -> None:
    seen: list[int] = []

    @FUZZ
    @given(data=form(PUBLISH_FORM_FIELDS))
    def post(data: dict[str, str]) -> None:
        response = publisher.post("/publish/send", data, headers={"HX-Request": "true"})
        seen.append(response.status_code)
        assert response.status_code < 500, (data, response.content[:300])

    post()
    assert len(seen) >= 50


def test_the_demo_controls_answer_any_form_data_without_a_500(publisher: Client) -> None:
    seen: list[int] = []

    @FUZZ
    @given(
        scenario=st.sampled_from(["topics", "mailer", "no-such-demo"]),
        control=st.sampled_from(DEMO_PATHS),
        data=form(DEMO_FORM_FIELDS),
    )
    def post(scenario: str, control: str, data: dict[str, str]) -> None:
        path = f"/demo/{scenario}/{control}"
        if control == "controls":
            response = publisher.get(path, data)
        else:
            response = publisher.post(path, data, headers={"HX-Request": "true"})
        seen.append(response.status_code)
        assert response.status_code < 500, (path, data, response.content[:300])

    post()
    assert len(seen) >= 50


def refusal_names_a_parameter(frame: str, params: dict[str, str], path: str) -> bool:
    if path.startswith("/ws/tap/"):
        message = json.loads(frame)
        return message["type"] == "error" and message["field"] in params
    named = re.search(r'id="filter-error-([\w-]+)"', frame)
    return named is not None and named.group(1) in params


@pytest.mark.parametrize("path", ["/ws/tap/", "/ws/live/"])
def test_a_websocket_accepts_or_names_the_bad_parameter_for_any_query(
    transactional_db: None, path: str
) -> None:
    user = make_user(
        f"ws-fuzzer-{uuid.uuid4().hex[:6]}", vhosts=[f"flows-fuzz-nothing-{uuid.uuid4().hex}"]
    )
    outcomes: dict[int | str, int] = {}
    queries = st.dictionaries(st.sampled_from(SOCKET_PARAMS), TEXT, max_size=5)

    async def one(params: dict[str, str]) -> None:
        communicator = connect(f"{path}?{urlencode(params)}", user)
        connected, _ = await communicator.connect(timeout=10)
        assert connected, params
        frame = await communicator.receive_from(timeout=10)
        closed = await communicator.receive_output(timeout=10)
        assert closed["type"] == "websocket.close", (params, closed)
        code = closed["code"]
        outcomes[code] = outcomes.get(code, 0) + 1
        if code == CLOSE_BAD_REQUEST:
            assert refusal_names_a_parameter(frame, params, path), (params, frame)
        else:
            # The query could be used: refused only for the vhost outside the user's limits.
            assert code == CLOSE_FORBIDDEN, (params, closed, frame)
        await communicator.disconnect()

    @FUZZ
    @given(params=queries)
    def socket(params: dict[str, str]) -> None:
        async def test() -> None:
            await one(params)

        run_with_tap(test)

    socket()
    assert sum(outcomes.values()) >= 50
    assert CLOSE_BAD_REQUEST in outcomes, outcomes  # the generator reaches the checks
