"""The overview in a real browser: sign-in, the real broker's facts, outages and recovery."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from flows.broker.management_api import ManagementClient
from tests.support.browser import sign_in
from tests.support.live_server import free_port
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.browser


def test_signing_in_through_the_form_shows_the_real_broker_version(
    page: Page, live_dashboard, user, management_client: ManagementClient
):
    sign_in(page, live_dashboard.url, username=user.username)
    overview = management_client.overview()
    expect(page.get_by_test_id("rabbitmq-version")).to_have_text(overview.rabbitmq_version)
    expect(page.get_by_test_id("node-name")).to_have_text(overview.node)
    expect(page.get_by_test_id("signed-in-user")).to_have_text("alice")
    expect(page.get_by_test_id("vhosts")).to_contain_text("/")


def test_the_vhost_selector_is_shared_by_pages(signed_in_page: Page, live_dashboard, broker_vhost):
    page = signed_in_page
    page.get_by_label("Virtual host").select_option(broker_vhost)
    expect(page).to_have_url(re.compile(r"\?vhost=flows-test-"))
    # The choice is remembered in the session, without the parameter.
    page.goto(f"{live_dashboard.url}/")
    expect(page.get_by_label("Virtual host")).to_have_value(broker_vhost)
    expect(page.locator("tr.is-selected")).to_contain_text(broker_vhost)


def test_an_anonymous_visit_redirects_to_login(page: Page, live_dashboard):
    page.goto(f"{live_dashboard.url}/")
    expect(page).to_have_url(f"{live_dashboard.url}/accounts/login/?next=/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_a_wrong_password_is_refused_on_the_form(page: Page, live_dashboard, user):
    page.goto(f"{live_dashboard.url}/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("enter a correct username and password")


def test_an_unreachable_api_is_shown_plainly_without_credentials(page: Page, start_dashboard, user):
    closed = free_port()
    server = start_dashboard(
        RABBITMQ_API_URL=f"http://guest:api-s3cret@127.0.0.1:{closed}/",
        AMQP_URL="amqp://guest:amqp-s3cret@127.0.0.1:5672/",
    )
    sign_in(page, server.url, username=user.username)
    expect(page.get_by_test_id("broker-error")).to_contain_text(
        f"RabbitMQ management API unreachable at 127.0.0.1:{closed}"
    )
    html = page.content()
    assert "s3cret" not in html
    assert "Traceback" not in html
    assert "s3cret" not in server.output()


def test_the_overview_shows_an_outage_then_recovers_by_itself(
    page: Page, start_dashboard, user, management_client: ManagementClient
):
    proxy = TcpProxy(target_port=15672, listen_port=free_port())
    proxy.start()
    try:
        server = start_dashboard(RABBITMQ_API_URL=f"http://127.0.0.1:{proxy.listen_port}/")
        sign_in(page, server.url, username=user.username)
        version = management_client.overview().rabbitmq_version
        expect(page.get_by_test_id("rabbitmq-version")).to_have_text(version)

        proxy.stop()  # the broker "goes away" for this dashboard only
        expect(page.get_by_test_id("broker-error")).to_contain_text("unreachable", timeout=30_000)

        proxy.start()
        # Recovery once the broker is back, without a reload.
        expect(page.get_by_test_id("rabbitmq-version")).to_have_text(version, timeout=30_000)
    finally:
        proxy.stop()
