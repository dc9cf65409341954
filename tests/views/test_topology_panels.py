"""The topology page's panels as HTML fragments (`/topology/details`, `/topology/route`),
against the real broker, through Django's test client."""

from __future__ import annotations

import html
import json
import re
import uuid
from urllib.parse import quote

import pytest
from django.test import Client

from flows.broker.amqp import open_blocking_connection
from flows.broker.management_api import ManagementClient
from flows.topology.reading import load_topology
from flows.topology.records import Consumer
from tests.support.topology_definitions import (
    BAD_ROUTE_REQUESTS,
    declare,
    declare_hostile_names,
    queue,
)
from tests.support.vhosts import HOSTILE, SCRIPT
from tests.support.waiting import eventually

EU = json.dumps({"region": "eu"})


@pytest.fixture
def api(signed_in: Client) -> Client:
    return signed_in


def fragment(client: Client, path: str, **params: str) -> tuple[int, str]:
    response = client.get(path, params, headers={"HX-Request": "true"})
    assert response["Content-Type"].startswith("text/html")
    text = response.content.decode()
    assert "<html" not in text  # a fragment, never a page (nor Django's error page)
    return response.status_code, text


def details(client: Client, vhost: str, kind: str, name: str, **params: str):
    return fragment(client, "/topology/details", vhost=vhost, kind=kind, name=name, **params)


def shown_details(client: Client, vhost: str, kind: str, name: str) -> tuple[str, str]:
    """A node's details panel, which must be shown: its markup, and its text as a reader sees it."""
    status, markup = details(client, vhost, kind, name)
    assert status == 200
    return markup, text_of(markup)


def dry_run(client: Client, vhost: str, **params: str):
    return fragment(client, "/topology/route", vhost=vhost, **params)


INLINE_TAG = re.compile(r"</?(code|strong|span|button|a)\b[^>]*>")


def text_of(markup: str) -> str:
    """What a person reads: the markup without tags, entities decoded, spaces collapsed
    (block elements apart, inline ones not)."""
    text = re.sub(r"<[^>]+>", " ", INLINE_TAG.sub("", markup))
    return " ".join(html.unescape(text).split())


def attribute(markup: str, name: str) -> str | None:
    found = re.search(rf'{name}="([^"]*)"', markup)
    return html.unescape(found.group(1)) if found else None


def field_error(markup: str, field: str) -> str:
    """The out-of-band error slot beside a dry-run field (empty when the field is fine)."""
    found = re.search(
        rf'<span[^>]*data-error-for="{field}"[^>]*hx-swap-oob="true">(.*?)</span>', markup
    )
    assert found, f"no error slot for {field}"
    return html.unescape(found.group(1))


# --- the details panel --------------------------------------------------------------------------


def test_an_exchange_shows_its_facts_edges_and_a_publish_link(api: Client, shop: str):
    markup, text = shown_details(api, shop, "exchange", "orders")
    assert "orders" in re.search(r'data-testid="details-name">([^<]*)<', markup).group(1)
    assert "type topic" in text
    assert "alternate exchange unrouted (argument)" in text
    assert "Bindings from here (3)" in text
    assert "orders.eu binding order.eu.*" in text
    assert "audit exchange binding order.#" in text
    assert "unrouted alternate exchange" in text
    assert "Bound from (0)" in text
    assert "Dry-run from here" in text
    assert attribute(markup, "href") == f"/publish/?vhost={quote(shop, safe='')}&exchange=orders"
    # The panel's names are nodes the graph can focus on.
    assert 'data-action="show" data-kind="queue" data-name="orders.eu"' in markup


def test_a_queue_shows_its_settings_arguments_bindings_and_dead_letter_exchange(
    api: Client, shop: str
):
    _, text = shown_details(api, shop, "queue", "orders.eu")
    assert "dead-letter exchange dlx (argument)" in text
    assert "max length 10" in text
    assert '"x-max-length": 10' in text
    assert "Bound from (1) orders binding order.eu.*" in text
    assert "Consumers (0) none" in text
    assert "Dead-letters to (1) dlx dead letters" in text
    assert "Publish to this exchange" not in text


def test_a_headers_binding_reads_as_its_arguments(api: Client, shop: str):
    _, markup = details(api, shop, "queue", "audited")
    assert "Bound from (1) audit binding region=eu x-match=any" in text_of(markup)


def test_an_exchange_named_but_missing_says_messages_sent_its_way_are_dropped(
    api: Client, shop: str
):
    markup, text = shown_details(api, shop, "exchange", "dlx")
    assert text.startswith("missing dlx")
    assert "This exchange does not exist" in text
    assert "Named by (1) orders.eu dead letters" in text
    # The graph names a missing exchange's node as an exchange's.
    assert 'data-kind="exchange" data-name="dlx"' in markup


def test_a_consumer_shows_its_prefetch_and_ack_mode_and_its_queue_lists_it(
    api: Client, scratch_vhost: str, management_client: ManagementClient, settings
):
    settings.FLOWS_TOPOLOGY_MAX_AGE_S = 0  # the consumer appears after the first read
    declare(management_client, scratch_vhost, queues=[queue("work")])
    connection = open_blocking_connection(vhost=scratch_vhost, purpose="panel test")
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=7)
        channel.basic_consume("work", lambda *a: None, consumer_tag="worker-1")
        connection.process_data_events(time_limit=0.1)

        def the_consumer() -> Consumer | None:
            # The management API may list a new consumer before it knows its channel, or
            # before it lists its connection (which names it).
            consumers = load_topology(scratch_vhost).consumers
            listed = consumers and consumers[0].channel and consumers[0].connection_label
            return consumers[0] if listed else None

        consumer = eventually(the_consumer, what="the consumer listed with its channel")

        status, markup = details(
            api, scratch_vhost, "consumer", "worker-1", channel=consumer.channel
        )
        assert status == 200
        text = text_of(markup)
        assert "consumer worker-1" in text
        assert "prefetch 7" in text and "ack mode manual ack" in text
        assert attribute(markup, "data-channel") == consumer.channel

        _, queue_markup = details(api, scratch_vhost, "queue", "work")
        # Listed by the name the dashboard gave its connection; the tag on hovering.
        assert (
            f"Consumers (1) flows-dashboard: panel test prefetch 7 · manual ack · "
            f"{consumer.channel}"
        ) in text_of(queue_markup)
        assert '<code title="worker-1">flows-dashboard: panel test</code>' in queue_markup
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("kind", "name", "status", "message"),
    [
        ("queue", "gone", 404, 'No queue named "gone" in vhost'),
        ("exchange", "gone", 404, 'No exchange named "gone" in vhost'),
        ("consumer", "gone", 404, 'No consumer named "gone" in vhost'),
        ("binding", "x", 400, "kind must be one of exchange, queue, consumer"),
    ],
)
def test_a_node_the_vhost_lacks_is_said_plainly_in_the_panel(
    api: Client, shop: str, kind: str, name: str, status: int, message: str
):
    got, markup = details(api, shop, kind, name)
    assert got == status
    assert 'role="alert"' in markup
    assert message in text_of(markup)


def test_an_unknown_vhost_is_said_plainly_in_both_panels(api: Client):
    name = f"no-such-vhost-{uuid.uuid4().hex[:6]}"
    status, markup = details(api, name, "queue", "q")
    assert (status, text_of(markup)) == (404, f"No vhost named {name!r} on the broker")
    status, markup = dry_run(api, name, exchange="x")
    assert status == 404
    assert f"No vhost named {name!r} on the broker" in text_of(markup)


# --- the dry-run --------------------------------------------------------------------------------


def test_a_routed_dry_run_shows_each_queue_with_its_chain(api: Client, shop: str):
    status, markup = dry_run(api, shop, exchange="orders", routing_key="order.eu.paid", headers=EU)
    assert status == 200
    text = text_of(markup)
    summary = re.search(r'data-testid="route-summary">(.*?)</div>', markup, re.S).group(1)
    assert text_of(summary) == 'Routed to 2 queues: "audited", "orders.eu".'
    assert "is-routed" in markup
    assert "Queues reached audited orders [order.#] → audit → audited" in text
    assert "orders [order.eu.*] → orders.eu" in text
    assert field_error(markup, "exchange") == "" and field_error(markup, "headers") == ""


def test_the_dry_run_carries_the_same_hops_as_the_api_for_the_graph(api: Client, shop: str):
    params = {"exchange": "orders", "routing_key": "order.eu.paid", "headers": EU}
    _, markup = dry_run(api, shop, **params)
    route = json.loads(attribute(markup, "data-route"))
    answer = json.loads(api.get("/api/route", {"vhost": shop, **params}).content)
    assert route == {"exchange": "orders", "unroutable": False, "hops": answer["hops"]}


def test_an_unroutable_dry_run_reads_plainly_and_lists_the_misses(api: Client, shop: str):
    status, markup = dry_run(api, shop, exchange="lonely", routing_key="nobody")
    assert status == 200
    text = text_of(markup)
    assert "is-unroutable" in markup
    assert text.startswith("Unroutable. no binding of")
    assert '"dead-end" routes it nowhere either' in text
    assert json.loads(attribute(markup, "data-route"))["unroutable"] is True

    _, markup = dry_run(api, shop, exchange="orders", routing_key="order.us.paid")
    assert "Bindings that did not match orders → orders.eu" in text_of(markup)


def test_a_message_caught_by_the_alternate_exchange_says_so(api: Client, shop: str):
    _, markup = dry_run(api, shop, exchange="orders", routing_key="no.match")
    text = text_of(markup)
    assert "Caught by alternate exchange unrouted." in text
    assert "orders alternate exchange → unrouted → leftovers" in text


def test_the_default_exchange_route_notes_a_missing_queue(api: Client, shop: str):
    _, markup = dry_run(api, shop, exchange="", routing_key="nope")
    assert 'no queue named "nope"' in text_of(markup)


@pytest.mark.parametrize(("params", "status", "field", "message"), BAD_ROUTE_REQUESTS)
def test_a_bad_dry_run_is_flagged_next_to_its_field(
    api: Client, shop: str, params: dict, status: int, field: str, message: str
):
    got, markup = dry_run(api, shop, **params)
    assert got == status
    assert message in field_error(markup, field)
    other = {"exchange": "headers", "headers": "exchange"}[field]
    assert field_error(markup, other) == ""
    assert message in text_of(re.search(r'role="alert"[^>]*>(.*?)</p>', markup, re.S).group(1))
    assert "data-route" not in markup


# --- hostile names ------------------------------------------------------------------------------


def test_hostile_names_are_escaped_in_both_panels(
    api: Client, hostile_vhost: str, management_client: ManagementClient
):
    declare_hostile_names(management_client, hostile_vhost, SCRIPT)
    status, markup = details(api, hostile_vhost, "exchange", SCRIPT)
    assert status == 200
    assert SCRIPT not in markup
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in markup
    text = text_of(markup)
    assert "Bindings from here (2)" in text
    assert f"{HOSTILE} binding" in text and f"{SCRIPT} binding" in text
    assert attribute(markup, "href") == (
        f"/publish/?vhost={quote(hostile_vhost, safe='')}&exchange={quote(SCRIPT, safe='')}"
    )
    assert attribute(markup, "data-exchange") == SCRIPT

    status, markup = details(api, hostile_vhost, "queue", HOSTILE)
    assert (status, attribute(markup, "data-name")) == (200, HOSTILE)

    status, markup = dry_run(api, hostile_vhost, exchange=SCRIPT, routing_key="<b>%2F/")
    assert status == 200
    assert SCRIPT not in markup and "<b>" not in markup
    route = json.loads(attribute(markup, "data-route"))
    assert {hop["destination"] for hop in route["hops"]} == {HOSTILE, SCRIPT}
    assert f'Routed to 2 queues: "{SCRIPT}", "{HOSTILE}".' in text_of(markup)

    status, markup = dry_run(api, hostile_vhost, exchange="", headers='{"<i>": 1}')
    assert status == 200 and "<i>" not in markup


# --- the broker down, and who may ask -----------------------------------------------------------


def test_a_management_api_outage_is_a_503_message_in_both_panels(api: Client, api_down: int):
    vhost = f"flows-test-unread-{uuid.uuid4().hex[:8]}"
    expected = f"RabbitMQ management API unreachable at 127.0.0.1:{api_down}"
    status, markup = details(api, vhost, "queue", "q")
    assert (status, text_of(markup)) == (503, expected)
    status, markup = dry_run(api, vhost, exchange="")
    assert status == 503
    assert expected in text_of(markup)


@pytest.mark.parametrize("path", ["/topology/details", "/topology/route"])
def test_an_anonymous_visitor_is_sent_to_sign_in(client: Client, path: str):
    response = client.get(path, {"vhost": "/", "kind": "queue", "name": "q", "exchange": ""})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_post_is_refused(api: Client):
    assert api.post("/topology/route").status_code == 405
    assert api.post("/topology/details").status_code == 405
