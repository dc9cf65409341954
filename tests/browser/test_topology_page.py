"""The /topology/ page in a real browser, against the real broker."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from flows.broker.management_api import ManagementClient
from tests.support.browser import sign_in
from tests.support.live_server import free_port
from tests.support.topology_definitions import (
    SHOP_BINDINGS,
    SHOP_EXCHANGES,
    SHOP_QUEUES,
    binding,
    declare,
    declare_hostile_names,
    exchange,
    queue,
)
from tests.support.vhosts import HOSTILE, SCRIPT

pytestmark = pytest.mark.browser

IMG = "<img src=x onerror=window.__pwned=1>"


def open_topology(page: Page, base_url: str, vhost: str) -> None:
    page.set_viewport_size({"width": 1500, "height": 900})
    page.goto(f"{base_url}/topology/?vhost={quote(vhost, safe='')}")
    page.wait_for_function("() => document.body.dataset.graphReady === 'true'")


def drawn(page: Page, selector: str = "node") -> set[str]:
    return set(
        page.evaluate(
            "(s) => window.topologyGraph.cy.elements(s).not('.dot').map((e) => e.id())", selector
        )
    )


def classes_of(page: Page, element_id: str) -> set[str]:
    return set(
        page.evaluate("(id) => window.topologyGraph.cy.getElementById(id).classes()", element_id)
    )


def click_node(page: Page, node_id: str) -> None:
    """Click where the node is drawn on the canvas, as a person would."""
    page.wait_for_function("() => !window.topologyGraph.cy.animated()")
    box = page.get_by_test_id("topology-graph").bounding_box()
    position = page.evaluate(
        "(id) => window.topologyGraph.cy.getElementById(id).renderedPosition()", node_id
    )
    page.mouse.click(box["x"] + 1 + position["x"], box["y"] + 1 + position["y"])


@pytest.fixture
def shop(scratch_vhost: str, management_client: ManagementClient) -> str:
    """The shop (`definitions.SHOP_*`) with its dead-letter exchange: one vhost per test,
    which may change it."""
    declare(
        management_client,
        scratch_vhost,
        exchanges=[*SHOP_EXCHANGES, exchange("dlx", "fanout")],
        queues=[*SHOP_QUEUES, queue("dead")],
        bindings=[*SHOP_BINDINGS, binding("dlx", "dead")],
    )
    return scratch_vhost


def test_the_graph_draws_the_declared_topology_with_distinct_edges(
    signed_in_page: Page, live_dashboard, shop: str
):
    page = signed_in_page
    open_topology(page, live_dashboard.url, shop)
    nodes = drawn(page, "node")
    assert {
        "exchange:orders",
        "exchange:audit",
        "queue:orders.eu",
        "queue:audited",
        "queue:dead",
    } <= nodes
    # amq.* and the default exchange are hidden until asked for.
    assert "exchange:amq.topic" not in nodes and "exchange:" not in nodes
    kinds = page.evaluate(
        "() => Object.fromEntries(window.topologyGraph.cy.edges().map((e) => "
        "[e.data('kind') + ' ' + e.source().id() + ' ' + e.target().id(), e.data('label')]))"
    )
    assert kinds == {
        "binding exchange:orders queue:orders.eu": "order.eu.*",
        "e2e exchange:orders exchange:audit": "order.#",
        "binding exchange:audit queue:audited": "region=eu x-match=any",
        "alternate exchange:orders exchange:unrouted": "alternate",
        "alternate exchange:lonely exchange:dead-end": "alternate",
        "dead-letter queue:orders.eu exchange:dlx": "dead letters",
        "binding exchange:unrouted queue:leftovers": "",
        "binding exchange:dlx queue:dead": "",
    }
    # Layered left to right: exchanges, then the queues they feed.
    x = page.evaluate(
        "() => Object.fromEntries(window.topologyGraph.cy.nodes().map((n) => "
        "[n.id(), n.position('x')]))"
    )
    assert x["exchange:orders"] < x["exchange:audit"] < x["queue:audited"]

    page.get_by_label("amq.* and the default exchange").check()
    page.wait_for_function(
        "() => window.topologyGraph.cy.getElementById('exchange:amq.topic').nonempty()"
    )
    expect(page.get_by_test_id("default-exchange-note")).to_contain_text("implicit binding")


def test_clicking_a_node_shows_its_details(signed_in_page: Page, live_dashboard, shop: str):
    page = signed_in_page
    open_topology(page, live_dashboard.url, shop)
    click_node(page, "queue:orders.eu")
    panel = page.get_by_test_id("details-panel")
    expect(page.get_by_test_id("details-name")).to_have_text("orders.eu")
    expect(panel).to_contain_text("dead-letter exchange")
    expect(panel).to_contain_text('"x-max-length": 10')
    expect(panel).to_contain_text("ready")

    click_node(page, "exchange:orders")
    expect(page.get_by_test_id("details-name")).to_have_text("orders")
    expect(panel).to_contain_text("unrouted (argument)")
    expect(panel).to_contain_text("Bindings from here (3)")
    expect(page.get_by_test_id("publish-link")).to_have_attribute(
        "href", f"/publish/?vhost={quote(shop, safe='')}&exchange=orders"
    )


def test_the_panels_names_focus_the_graph_and_an_exchange_offers_its_dry_run(
    signed_in_page: Page, live_dashboard, shop: str
):
    page = signed_in_page
    open_topology(page, live_dashboard.url, shop)
    panel = page.get_by_test_id("details-panel")
    click_node(page, "exchange:orders")
    expect(page.get_by_test_id("details-name")).to_have_text("orders")

    panel.get_by_role("button", name="orders.eu", exact=True).click()
    expect(page.get_by_test_id("details-name")).to_have_text("orders.eu")
    expect(page.get_by_test_id("focus-banner")).to_contain_text("orders.eu")
    assert drawn(page, "node:selected") == {"queue:orders.eu"}

    panel.get_by_role("button", name="orders", exact=True).click()  # bound from orders
    expect(page.get_by_test_id("details-name")).to_have_text("orders")
    panel.get_by_role("button", name="Dry-run from here").click()
    expect(page.get_by_label("Exchange", exact=True)).to_have_value("orders")
    expect(page.get_by_label("Routing key")).to_be_focused()
    page.get_by_label("Routing key").fill("order.eu.paid")
    page.get_by_role("button", name="Show the route").click()
    expect(page.get_by_test_id("route-summary")).to_have_text('Routed to 1 queue: "orders.eu".')
    assert "route" in classes_of(page, "queue:orders.eu")
    assert "dim" in classes_of(page, "exchange:audit")  # the headers exchange did not match

    page.get_by_role("button", name="Clear").click()
    expect(page.get_by_test_id("dry-run-result")).to_be_empty()
    assert "route" not in classes_of(page, "queue:orders.eu")
    assert "dim" not in classes_of(page, "exchange:audit")


def test_the_dry_run_lights_up_the_path_and_reads_unroutable_plainly(
    signed_in_page: Page, live_dashboard, shop: str
):
    page = signed_in_page
    open_topology(page, live_dashboard.url, shop)
    result = page.get_by_test_id("dry-run-result")

    page.get_by_label("Exchange", exact=True).select_option("orders")
    page.get_by_label("Routing key").fill("order.eu.paid")
    page.get_by_label("Headers (JSON object)").fill('{"region": "eu"}')
    page.get_by_role("button", name="Show the route").click()
    expect(page.get_by_test_id("route-summary")).to_have_text(
        'Routed to 2 queues: "audited", "orders.eu".'
    )
    expect(result).to_contain_text("orders [order.#] → audit → audited")
    assert "route" in classes_of(page, "queue:audited")
    assert "route" in classes_of(page, "exchange:audit")
    assert "dim" in classes_of(page, "queue:leftovers")

    page.get_by_label("Exchange", exact=True).select_option("lonely")
    page.get_by_label("Routing key").fill("nobody")
    page.get_by_label("Headers (JSON object)").fill("")
    page.get_by_role("button", name="Show the route").click()
    summary = page.get_by_test_id("route-summary")
    expect(summary).to_contain_text("Unroutable.")
    expect(summary).to_contain_text('the alternate exchange "dead-end" routes it nowhere either')
    assert "unroutable" in classes_of(page, "exchange:lonely")

    page.get_by_label("Exchange", exact=True).select_option("orders")
    page.get_by_label("Routing key").fill("no.match")
    page.get_by_role("button", name="Show the route").click()
    expect(result).to_contain_text("Caught by alternate exchange unrouted.")
    assert "route" in classes_of(page, "queue:leftovers")


def test_a_malformed_headers_field_is_flagged_next_to_it(
    signed_in_page: Page, live_dashboard, shop: str
):
    page = signed_in_page
    open_topology(page, live_dashboard.url, shop)
    page.get_by_label("Headers (JSON object)").fill("{region: eu")
    page.get_by_role("button", name="Show the route").click()
    expect(page.locator('[data-error-for="headers"]')).to_contain_text("headers is not valid JSON")
    expect(page.get_by_test_id("dry-run-error")).to_contain_text("headers is not valid JSON")

    page.get_by_label("Headers (JSON object)").fill('{"region": "eu"}')
    page.get_by_role("button", name="Show the route").click()
    expect(page.get_by_test_id("route-summary")).to_be_visible()
    expect(page.locator('[data-error-for="headers"]')).to_be_empty()


def test_a_topology_change_appears_keeping_zoom_and_selection(
    signed_in_page: Page, live_dashboard, shop: str, management_client: ManagementClient
):
    page = signed_in_page
    open_topology(page, live_dashboard.url, shop)
    click_node(page, "exchange:orders")
    expect(page.get_by_test_id("details-name")).to_have_text("orders")
    box = page.get_by_test_id("topology-graph").bounding_box()
    page.mouse.move(box["x"] + 200, box["y"] + 200)
    page.mouse.wheel(0, -300)  # the user zooms in
    page.wait_for_function(
        "() => window.topologyGraph.cy.zoom() !== 1 && !window.topologyGraph.cy.animated()"
    )
    before = page.evaluate(
        "() => ({zoom: window.topologyGraph.cy.zoom(), pan: window.topologyGraph.cy.pan()})"
    )
    assert before["zoom"] != pytest.approx(1.0)

    declare(
        management_client,
        shop,
        queues=[queue("late-comer")],
        bindings=[binding("orders", "late-comer", "late.#")],
    )
    page.wait_for_function(
        "() => window.topologyGraph.cy.getElementById('queue:late-comer').nonempty()",
        timeout=30_000,
    )

    after = page.evaluate(
        "() => ({zoom: window.topologyGraph.cy.zoom(), pan: window.topologyGraph.cy.pan()})"
    )
    assert after == before
    assert drawn(page, "node:selected") == {"exchange:orders"}
    # The details panel follows the change too.
    expect(page.get_by_test_id("details-panel")).to_contain_text("Bindings from here (4)")


def test_hostile_names_render_as_text_and_links_encode_them(
    signed_in_page: Page, live_dashboard, hostile_vhost: str, management_client: ManagementClient
):
    declare_hostile_names(management_client, hostile_vhost, IMG)
    page = signed_in_page
    open_topology(page, live_dashboard.url, hostile_vhost)
    expect(page.get_by_test_id("topology-vhost")).to_have_text(hostile_vhost)
    assert {f"exchange:{IMG}", f"queue:{SCRIPT}", f"queue:{HOSTILE}"} <= drawn(page)
    labels = page.evaluate("() => window.topologyGraph.cy.nodes().map((n) => n.data('label'))")
    assert SCRIPT in {label.split("\n")[0] for label in labels}

    click_node(page, f"exchange:{IMG}")
    expect(page.get_by_test_id("details-name")).to_have_text(IMG)
    expect(page.get_by_test_id("details-panel")).to_contain_text(HOSTILE)
    expect(page.get_by_test_id("publish-link")).to_have_attribute(
        "href", f"/publish/?vhost={quote(hostile_vhost, safe='')}&exchange={quote(IMG, safe='')}"
    )

    page.get_by_label("Search by name").fill("a/b%2F")
    expect(page.get_by_test_id("search-results")).to_have_text(f"queue {HOSTILE}")

    page.get_by_label("Search by name").fill("")
    page.get_by_label("Exchange", exact=True).select_option(IMG)
    page.get_by_role("button", name="Show the route").click()
    expect(page.get_by_test_id("dry-run-result")).to_contain_text(HOSTILE)
    expect(page.get_by_test_id("dry-run-result")).to_contain_text(SCRIPT)

    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("img[src=x]").count() == 0


def test_a_large_vhost_asks_for_a_search_then_focuses_and_collapses(
    signed_in_page: Page, live_dashboard, roomy_vhost: str, management_client: ManagementClient
):
    # Exchanges, not queues: as many nodes, and far cheaper for the broker to make and drop.
    names = [f"x-{n:03d}" for n in range(400)]
    declare(
        management_client,
        roomy_vhost,
        exchanges=[exchange("hub", "topic"), *(exchange(name, "fanout") for name in names)],
        bindings=[binding("hub", name, name, to="exchange") for name in names],
    )
    page = signed_in_page
    open_topology(page, live_dashboard.url, roomy_vhost)
    expect(page.locator(".flows-graph-overlay")).to_contain_text(
        "401 objects in this vhost: too many to draw at once"
    )
    assert drawn(page) == set()

    page.get_by_label("Search by name").fill("x-12")
    results = page.get_by_test_id("search-results")
    expect(results.get_by_role("button")).to_have_count(10)
    expect(page.locator(".flows-graph-overlay")).to_be_hidden()
    assert drawn(page) == {f"exchange:x-12{n}" for n in range(10)} | {"exchange:hub"}

    results.get_by_role("button", name="x-123").click()
    expect(page.get_by_test_id("focus-banner")).to_contain_text("x-123")
    assert drawn(page) == {"exchange:x-123", "exchange:hub"}

    # Focus on the hub: 40 neighbours, the rest collapsed into one node.
    click_node(page, "exchange:hub")
    expect(page.get_by_test_id("details-name")).to_have_text("hub")
    page.get_by_role("button", name="Focus on its neighbourhood").click()
    expect(page.get_by_test_id("focus-banner")).to_contain_text("hub")
    assert len(drawn(page)) == 1 + 40 + 1
    label = page.evaluate(
        "() => window.topologyGraph.cy.getElementById('more:exchange:hub').data('label')"
    )
    assert label.startswith("+360 more")
    click_node(page, "more:exchange:hub")  # one more page of neighbours
    page.wait_for_function("() => window.topologyGraph.cy.nodes().length === 1 + 140 + 1")
    label = page.evaluate(
        "() => window.topologyGraph.cy.getElementById('more:exchange:hub').data('label')"
    )
    assert label.startswith("+260 more")


def test_an_unknown_vhost_and_a_dead_management_api_are_said_plainly(
    page: Page, start_dashboard, live_dashboard, user
):
    sign_in(page, live_dashboard.url, username=user.username)
    response = page.goto(f"{live_dashboard.url}/topology/?vhost=no-such-vhost-here")
    assert response.status == 200
    expect(page.get_by_test_id("topology-error")).to_have_text(
        'No vhost named "no-such-vhost-here" on the broker.'
    )
    expect(page.get_by_test_id("graph-status")).to_contain_text("No vhost named")

    closed = free_port()
    server = start_dashboard(RABBITMQ_API_URL=f"http://127.0.0.1:{closed}/")
    sign_in(page, server.url, username=user.username)
    response = page.goto(f"{server.url}/topology/")
    assert response.status == 200
    expect(page.get_by_test_id("topology-error")).to_have_text(
        f"RabbitMQ management API unreachable at 127.0.0.1:{closed}"
    )
    expect(page.get_by_test_id("graph-status")).to_contain_text("unreachable")
    assert "Traceback" not in page.content()


def test_an_anonymous_visit_redirects_to_login(page: Page, live_dashboard):
    page.goto(f"{live_dashboard.url}/topology/")
    expect(page).to_have_url(f"{live_dashboard.url}/accounts/login/?next=/topology/")
