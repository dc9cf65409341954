"""The dashboard in Chromium on a real broker, as an attacker would like it and as a shared
staging broker needs it: names and messages full of markup render as text on every page,
masked values never reach the browser, and the policy check of every browser test
(`conftest.no_csp_violation`) does catch an inline script or style."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pika
import pytest
from playwright.sync_api import Page, expect

from flows.broker.amqp import connection_parameters
from flows.broker.management_api import ManagementClient
from flows.masking import MASKED
from tests.support.accounts import dashboard_users
from tests.support.broker_admin import create_vhost_for
from tests.support.publishing import grant_publish
from tests.support.topology_definitions import binding, declare, exchange, queue

pytestmark = pytest.mark.browser

# Where a page puts a name into markup unescaped, these run: a script element, and an
# attribute broken out of (whichever quote it was in) into an element with a handler.
SCRIPT = "<script>alert(1)</script>"
BREAKOUT = "\"'><img src=x onerror=alert(2)>"
EXCHANGE = f"ex {BREAKOUT}"
QUEUE = f"q {SCRIPT}"
ROUTING_KEY = f"key.{BREAKOUT}"
CONSUMER_CONNECTION = f"worker {SCRIPT}"
HEADER = f"h-{SCRIPT}"
# What an injection would leave in the document (the policy check reports what it blocked);
# the pages' own data is JSON in script elements that do not run (`json_script`).
INJECTED = "img[src='x'], script:not([src]):not([type='application/json']), [onerror]"


@pytest.fixture
def hostile_broker(management_client: ManagementClient) -> Iterator[str]:
    """A vhost named with markup, holding an exchange, a queue and a binding named so too,
    with tracing on (the live page watches it through the firehose)."""
    vhost = create_vhost_for(
        management_client, f"flows-test-{uuid.uuid4().hex[:6]} {SCRIPT}", dashboard_users()
    )
    declare(
        management_client,
        vhost,
        exchanges=[exchange(EXCHANGE, "topic")],
        queues=[queue(QUEUE)],
        bindings=[binding(EXCHANGE, QUEUE, "key.#")],
    )
    management_client.set_tracing(vhost, enabled=True)
    yield vhost
    management_client.set_tracing(vhost, enabled=False)
    management_client.remove_vhost(vhost)


@pytest.fixture
def dialogs(page: Page) -> list[str]:
    """Every dialog a page opens (an injected alert() would): dismissed, and recorded."""
    opened: list[str] = []

    def record(dialog) -> None:
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return opened


def assert_nothing_injected(page: Page, dialogs: list[str]) -> None:
    assert page.locator(INJECTED).count() == 0
    assert dialogs == []
    # JSON embedded in the page reads back as the names it carries.
    for data in page.locator("script[type='application/json']").all_text_contents():
        json.loads(data)


def test_the_policy_check_catches_an_inline_script_and_style(
    signed_in_page: Page, live_dashboard, no_csp_violation: list[str]
) -> None:
    page = signed_in_page
    page.evaluate(
        """() => {
        const script = document.createElement("script");
        script.textContent = "window.__ran = true";
        document.body.append(script);
        const styled = document.createElement("div");
        styled.setAttribute("style", "color: red");
        document.body.append(styled);
    }"""
    )
    page.wait_for_function("() => window.__flowsCspViolations >= 2")
    assert page.evaluate("() => window.__ran") is None
    directives = " ".join(no_csp_violation)
    assert "script-src" in directives
    assert "style-src" in directives
    no_csp_violation.clear()  # caught: this test is about catching it


def test_markup_in_names_headers_and_bodies_renders_as_text_on_every_page(
    signed_in_page: Page, live_dashboard, user, hostile_broker: str, dialogs: list[str]
) -> None:
    grant_publish(user)
    page, base, vhost = signed_in_page, live_dashboard.url, hostile_broker
    at = quote(vhost, safe="")

    # A consumer whose connection carries markup in its name, and a message with markup in
    # its routing key, a header's name and value, and its JSON body.
    worker = pika.BlockingConnection(
        connection_parameters(vhost=vhost, purpose="test", exact_name=CONSUMER_CONNECTION)
    )
    try:
        channel = worker.channel()
        channel.basic_consume(QUEUE, lambda ch, method, *_: ch.basic_ack(method.delivery_tag))

        page.goto(f"{base}/?vhost={at}")
        expect(page.get_by_label("Virtual host")).to_have_value(vhost)
        assert_nothing_injected(page, dialogs)

        page.goto(f"{base}/topology/?vhost={at}")
        page.wait_for_function("() => document.body.dataset.graphReady === 'true'")
        assert json.loads(page.locator("#topology-config").text_content() or "")["vhost"] == vhost
        page.evaluate("(id) => window.topologyGraph.select(id)", f"queue:{QUEUE}")
        details = page.get_by_test_id("details-panel")
        expect(details).to_contain_text(CONSUMER_CONNECTION, timeout=30_000)
        expect(details).to_contain_text(EXCHANGE)
        page.evaluate("(id) => window.topologyGraph.select(id)", f"exchange:{EXCHANGE}")
        expect(page.get_by_test_id("details-name")).to_have_text(EXCHANGE)
        assert_nothing_injected(page, dialogs)

        page.goto(f"{base}/publish/?{urlencode({'vhost': vhost, 'exchange': EXCHANGE})}")
        page.get_by_label("Routing key").fill(ROUTING_KEY)
        page.get_by_role("button", name="Publish", exact=True).click()
        expect(page.get_by_test_id("publish-result")).to_contain_text(QUEUE)
        assert_nothing_injected(page, dialogs)

        page.goto(f"{base}/demo/topics/?vhost={at}")
        expect(page.get_by_test_id("demo-not-loaded")).to_contain_text(vhost)
        assert_nothing_injected(page, dialogs)

        page.goto(f"{base}/live/?vhost={at}")
        expect(page.get_by_test_id("tap-state")).to_have_text("tap: running", timeout=30_000)
        body = {"html": BREAKOUT, "script": SCRIPT}
        channel.basic_publish(
            EXCHANGE,
            ROUTING_KEY,
            json.dumps(body).encode(),
            pika.BasicProperties(headers={HEADER: BREAKOUT}, content_type="application/json"),
        )
        feed = page.get_by_test_id("feed").locator(".live-row")
        published = feed.filter(has_text=ROUTING_KEY)
        expect(published).to_have_count(1)
        expect(feed.filter(has_text=CONSUMER_CONNECTION)).to_have_count(1, timeout=30_000)
        published.click()
        shown = page.get_by_test_id("message-details")
        expect(shown.get_by_test_id("details-headers")).to_contain_text(HEADER)
        expect(shown.get_by_test_id("details-headers")).to_contain_text(BREAKOUT)
        expect(shown.get_by_test_id("details-body")).to_contain_text(SCRIPT)
        with page.expect_download() as download:
            page.get_by_role("button", name="Export JSONL").click()
        exported = [
            json.loads(line) for line in Path(download.value.path()).read_text().splitlines()
        ]
        assert any(event["headers"] == {HEADER: BREAKOUT} for event in exported)
        assert_nothing_injected(page, dialogs)
    finally:
        worker.close()


def test_masked_values_never_reach_the_page_its_details_export_or_a_filter(
    signed_in_page: Page, live_dashboard, hostile_broker: str
) -> None:
    page, vhost = signed_in_page, hostile_broker
    secret = "s3cr3t-" + uuid.uuid4().hex[:8]
    # The filter looks for the secret: only the message that shows it openly may match.
    page.goto(f"{live_dashboard.url}/live/?{urlencode({'vhost': vhost, 'body': secret})}")
    expect(page.get_by_test_id("tap-state")).to_have_text("tap: running", timeout=30_000)
    with pika.BlockingConnection(connection_parameters(vhost=vhost, purpose="test")) as conn:
        channel = conn.channel()
        channel.basic_publish(
            EXCHANGE,
            "key.masked",
            json.dumps({"user": {"password": secret}, "n": 1}).encode(),
            pika.BasicProperties(headers={"Authorization": f"Bearer {secret}"}),
        )
        # Published after the masked one on the same channel, so shown after it, if at all.
        channel.basic_publish(EXCHANGE, "key.open", json.dumps({"note": secret}).encode())
    feed = page.get_by_test_id("feed").locator(".live-row")
    expect(feed.filter(has_text="key.open")).to_have_count(1)
    expect(feed).to_have_count(1)  # the masked message did not match the filter

    # Without the filter, the masked message shows, masked, everywhere.
    page.goto(f"{live_dashboard.url}/live/?{urlencode({'vhost': vhost, 'kind': 'publish'})}")
    expect(page.get_by_test_id("tap-state")).to_have_text("tap: running", timeout=30_000)
    with pika.BlockingConnection(connection_parameters(vhost=vhost, purpose="test")) as conn:
        conn.channel().basic_publish(
            EXCHANGE,
            "key.masked",
            json.dumps({"user": {"password": secret}, "n": 1}).encode(),
            pika.BasicProperties(headers={"Authorization": f"Bearer {secret}", "x-ok": "shown"}),
        )
    row = feed.filter(has_text="key.masked")
    expect(row).to_have_count(1)
    row.click()
    shown = page.get_by_test_id("message-details")
    expect(shown.get_by_test_id("details-headers")).to_contain_text("shown")
    expect(shown.get_by_test_id("details-headers")).to_contain_text(MASKED)
    expect(shown.get_by_test_id("details-body")).to_contain_text(MASKED)
    with page.expect_download() as download:
        page.get_by_role("button", name="Export JSONL").click()
    exported = Path(download.value.path()).read_text()
    assert MASKED in exported
    assert secret not in exported
    assert secret not in page.content()
