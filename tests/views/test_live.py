"""The live page's HTTP side: login, filters from the URL, details, consumption panel."""

from __future__ import annotations

import json
import pickle
import uuid
from typing import Any

import pika
import pytest
from django.test import Client
from django.urls import reverse

from flows.broker.amqp import connection_parameters
from flows.tap.events import TapEvent
from tests.support.live_page import ws_query
from tests.support.tap_events import published
from tests.support.waiting import eventually


@pytest.fixture
def client_in(db, django_user_model) -> Client:
    user = django_user_model.objects.create_user(username="bob", password="pw-long-enough-1")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("url", ["/live/", "/live/consumption", "/live/details"])
def test_anonymous_visitors_are_sent_to_sign_in(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_page_watches_the_selected_vhost_with_the_filters_in_the_url(client_in):
    response = client_in.get(
        "/live/", {"vhost": "a/b é", "routing_key": "food.*", "header": "k=v", "kind": "publish"}
    )
    assert response.status_code == 200
    assert ws_query(response.content.decode()) == {
        "vhost": ["a/b é"],
        "routing_key": ["food.*"],
        "header": ["k=v"],
        "kind": ["publish"],
    }
    html = response.content.decode()
    assert 'name="routing_key" value="food.*"' in html
    assert '<option value="publish" selected>' in html


def test_an_invalid_filter_is_shown_next_to_its_field_and_nothing_connects(client_in):
    response = client_in.get("/live/", {"vhost": "v", "header": "=<script>"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="filter-error-header" class="field-error" role="alert">write key=value' in html
    assert "ws-connect" not in html
    # The bad value is echoed back escaped.
    assert 'value="=&lt;script&gt;"' in html


def test_the_nav_links_to_the_live_page(client_in):
    html = client_in.get("/live/", {"vhost": "v"}).content.decode()
    assert '<a href="/live/" aria-current="page">Live</a>' in html


def tap_event(**fields: Any) -> TapEvent:
    """An unroutable publish with markup in every field a person sees."""
    return published(
        **{
            "seq": 7,
            "exchange": "<script>alert(1)</script>",
            "routing_key": "<img src=x onerror=alert(2)>",
            "routed_queues": [],
            "properties": {"content_type": "application/json", "message_id": "<b>m</b>"},
            "headers": {"<h>": "<img src=x onerror=alert(3)>"},
            "body": b'{"x": "<script>"}',
            **fields,
        }
    )


def test_details_render_every_field_escaped(client_in):
    response = client_in.post(reverse("live-details"), {"event": json.dumps(tap_event())})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;h&gt;" in html and "&lt;img src=x onerror=alert(3)&gt;" in html
    assert "&lt;b&gt;m&lt;/b&gt;" in html
    assert '<span class="j-string">&quot;&lt;script&gt;&quot;</span>' in html
    assert "UNROUTABLE" in html


@pytest.mark.parametrize("raw", ["", "not json", "[1, 2]", '"text"'])
def test_details_of_a_broken_row_say_so(client_in, raw):
    response = client_in.post(reverse("live-details"), {"event": raw})
    assert response.status_code == 200
    assert "This row carries no readable message." in response.content.decode()


def test_details_show_x_death_and_hex_bodies(client_in):
    event = tap_event(
        headers={"x-death": [{"queue": "work", "reason": "rejected", "count": 3, "exchange": ""}]},
        body=b"\xff\x01BC",  # not UTF-8: previewed as base64
    )
    assert event["body"]["encoding"] == "base64"
    html = client_in.post(reverse("live-details"), {"event": json.dumps(event)}).content.decode()
    assert '<td>work</td><td>rejected</td><td class="num">3</td>' in html
    assert "00000000  ff 01 42 43" in html


def test_details_need_a_csrf_token(db, django_user_model):
    user = django_user_model.objects.create_user(username="carol", password="pw-long-enough-2")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(reverse("live-details"), {"event": json.dumps(tap_event())})
    assert response.status_code == 403


def test_the_consumption_panel_shows_queues_and_consumers_of_the_real_broker(
    client_in, broker_vhost
):
    queue = f"work-{uuid.uuid4().hex[:6]}"
    with pika.BlockingConnection(
        connection_parameters(vhost=broker_vhost, purpose="test-consumer")
    ) as connection:
        channel = connection.channel()
        channel.queue_declare(queue, auto_delete=True)
        channel.basic_qos(prefetch_count=3)
        channel.basic_consume(queue, lambda *args: None, consumer_tag="<worker-1>")
        channel.basic_publish("", queue, b"x")

        def panel_with_the_consumer() -> str:
            response = client_in.get(reverse("live-consumption"), {"vhost": broker_vhost})
            page = response.content.decode()
            assert "&lt;worker-1&gt;" in page, page
            return page

        # The consumer list lags the declaration by a moment.
        html = eventually(
            panel_with_the_consumer, what="the consumer in the consumption panel", interval=0.2
        )
    assert f'<tr data-queue="{queue}">' in html
    assert "&lt;worker-1&gt;" in html and "<worker-1>" not in html
    assert '<td class="num">3</td>' in html  # the prefetch


def test_the_consumption_panel_reports_an_unknown_vhost_plainly(client_in):
    response = client_in.get(reverse("live-consumption"), {"vhost": f"nope-{uuid.uuid4().hex}"})
    assert response.status_code == 200
    assert "Not found on the broker" in response.content.decode()


@pytest.mark.parametrize(
    ("mode", "status", "in_ws"),
    [
        ("", 200, None),
        ("auto", 200, None),
        ("bindings", 200, ["bindings"]),
        ("firehose", 200, ["firehose"]),
        ("fast", 400, None),
    ],
)
def test_the_tap_mode_travels_in_the_url(client_in, mode, status, in_ws):
    response = client_in.get("/live/", {"vhost": "v", "mode": mode})
    assert response.status_code == status
    html = response.content.decode()
    if status == 400:
        assert 'id="filter-error-mode" class="field-error" role="alert">must be auto' in html
    else:
        assert ws_query(html).get("mode") == in_ws


def test_the_firehose_is_offered_to_a_user_who_may_switch_it_on(client_in, django_user_model):
    from django.contrib.auth.models import Permission

    assert "data-firehose-offer" not in client_in.get("/live/", {"vhost": "v"}).content.decode()
    user = django_user_model.objects.get(username="bob")
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="flows", codename="use_firehose")
    )
    assert "data-firehose-offer" in client_in.get("/live/", {"vhost": "v"}).content.decode()


def test_the_firehose_is_offered_where_an_administrator_configured_it(client_in, settings):
    settings.FLOWS_FIREHOSE_VHOSTS = ["traced"]
    assert "data-firehose-offer" in client_in.get("/live/", {"vhost": "traced"}).content.decode()
    assert "data-firehose-offer" not in client_in.get("/live/", {"vhost": "v"}).content.decode()


def test_details_show_a_pickled_celery_task_next_to_its_raw_body(client_in):
    class Evil:
        def __reduce__(self):
            return (exec, ("print('<b>owned</b>')",))

    event = tap_event(
        properties={"content_type": "application/x-python-serialize"},
        headers={"task": "proj.<i>add</i>", "id": "t-1", "retries": 1, "eta": None},
        body=pickle.dumps(((2, Evil()), {"z": 1}, {"callbacks": None}), protocol=4),
    )
    html = client_in.post(reverse("live-details"), {"event": json.dumps(event)}).content.decode()
    assert "Celery task (protocol 2, pickle)" in html
    assert '<dd data-field="task">proj.&lt;i&gt;add&lt;/i&gt;</dd>' in html
    assert '<dd data-field="id">t-1</dd>' in html
    assert '<dd data-field="retries">1</dd>' in html
    assert (
        '<dd data-field="args">(2, &lt;global builtins.exec&gt;(&quot;print(&#x27;&lt;b&gt;' in html
    )
    assert '<dd data-field="kwargs">{&#x27;z&#x27;: 1}</dd>' in html
    assert "Literal reading" in html and "never unpickled" in html
    assert 'data-testid="pickle-disassembly"' in html and "STACK_GLOBAL" in html
    assert "<b>" not in html and "<i>" not in html
    assert "Raw body" in html and "00000000  80 04" in html  # the raw body, next to it


def test_details_say_why_a_body_could_not_be_decoded(client_in):
    event = tap_event(properties={"content_type": "application/x-msgpack"}, body=b"\xc1")
    html = client_in.post(reverse("live-details"), {"event": json.dumps(event)}).content.decode()
    assert (
        '<p class="decode-error" data-testid="decode-error">could not decode as msgpack: ' in html
    )
    assert "00000000  c1" in html


def test_details_of_plain_json_have_no_decoded_section(client_in):
    html = client_in.post(
        reverse("live-details"), {"event": json.dumps(tap_event())}
    ).content.decode()
    assert 'data-testid="details-decoded"' not in html
    assert "<h3>Body " in html
