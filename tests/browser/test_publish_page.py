"""The publish page in a real browser, against the real broker."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import sign_in
from tests.support.publishing import DemoTopology, grant_publish

pytestmark = pytest.mark.browser


@pytest.fixture
def publisher_page(page: Page, live_dashboard, user, demo: DemoTopology) -> Page:
    grant_publish(user)
    sign_in(page, live_dashboard.url, username=user.username)
    page.goto(
        f"{live_dashboard.url}/publish/?vhost={quote(demo.vhost, safe='')}&exchange=demo.topic"
    )
    return page


@pytest.fixture
def markup_queue(demo: DemoTopology) -> str:
    """A queue whose name is markup (it must show as text), bound `a.*` to demo.topic.

    Declared before the page opens: the page's topology read serves its predictions for a
    couple of seconds (FLOWS_TOPOLOGY_MAX_AGE_S).
    """
    demo.client.declare_queue(demo.vhost, "<script>q</script>")
    demo.client.bind(demo.vhost, "demo.topic", "<script>q</script>", routing_key="a.*")
    return "<script>q</script>"


def test_publishing_shows_the_result_inline_with_the_routed_queues(
    markup_queue: str, publisher_page: Page, demo: DemoTopology
):
    page = publisher_page
    expect(page.get_by_label("Exchange")).to_have_value("demo.topic")  # prefilled from the link
    page.evaluate("window.notReloaded = true")
    page.get_by_label("Routing key").fill("a.b")
    page.get_by_label("Body", exact=True).fill('{"order": 1}')
    page.get_by_label("JSON").check()
    page.get_by_label("Header name").first.fill("attempt")
    page.get_by_label("Header type").first.select_option("int")
    page.get_by_label("Header value").first.fill("3")
    page.get_by_role("button", name="Publish", exact=True).click()

    result = page.get_by_test_id("publish-result")
    expect(result.get_by_test_id("outcome-confirm")).to_have_text("confirmed")
    expect(result.get_by_test_id("outcome-route")).to_have_text("routed")
    predicted = result.get_by_test_id("predicted-queues")
    expect(predicted).to_contain_text("q.a")
    expect(predicted).to_contain_text("q.all")
    expect(predicted).to_contain_text("<script>q</script>")
    expect(result).to_contain_text("predicted")
    assert page.evaluate("window.notReloaded") is True  # inline, no page load
    # The JSON body is shown again pretty-printed.
    expect(page.get_by_label("Body", exact=True)).to_have_value('{\n  "order": 1\n}')
    assert demo.wait_for_depth("q.a", 1) == 1
    assert demo.wait_for_depth("<script>q</script>", 1) == 1


def test_an_unroutable_message_shows_the_return(publisher_page: Page, demo: DemoTopology):
    page = publisher_page
    page.get_by_label("Exchange").fill("demo.direct")
    page.get_by_label("Routing key").fill("nobody")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_test_id("outcome-route")).to_have_text("returned: unroutable")
    expect(page.get_by_test_id("outcome-reply")).to_have_text("312 NO_ROUTE")


def test_field_errors_show_next_to_their_fields_and_nothing_is_published(
    publisher_page: Page, demo: DemoTopology
):
    page = publisher_page
    page.get_by_label("Routing key").fill("a.b")
    page.get_by_label("JSON").check()
    page.get_by_label("Body", exact=True).fill("{not json")
    page.get_by_text("Properties").click()
    page.get_by_label("Priority (0-255)").fill("300")
    page.get_by_label("Expiration (ms)").fill("soon")
    page.get_by_label("Header name").first.fill("n")
    page.get_by_label("Header type").first.select_option("int")
    page.get_by_label("Header value").first.fill("1.5")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_test_id("error-body")).to_contain_text("invalid JSON")
    expect(page.get_by_test_id("error-priority")).to_contain_text("between 0 and 255")
    expect(page.get_by_test_id("error-expiration")).to_contain_text("non-negative whole number")
    expect(page.get_by_test_id("error-header-value")).to_contain_text("expected an integer")
    # What was typed is still there.
    expect(page.get_by_label("Priority (0-255)")).to_have_value("300")
    assert demo.depth("q.all") == 0


def test_a_nonexistent_exchange_is_shown_on_the_field_and_the_next_publish_works(
    publisher_page: Page, demo: DemoTopology
):
    page = publisher_page
    page.get_by_label("Exchange").fill("no.such")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_test_id("error-exchange")).to_contain_text("no exchange 'no.such'")
    page.get_by_label("Exchange").fill("demo.topic")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_test_id("outcome-confirm")).to_have_text("confirmed")


def test_a_double_clicked_submit_publishes_once(publisher_page: Page, demo: DemoTopology):
    page = publisher_page
    page.get_by_label("Routing key").fill("a.b")
    page.get_by_role("button", name="Publish", exact=True).dblclick()
    expect(page.get_by_test_id("outcome-confirm")).to_have_text("confirmed")
    first_id = page.get_by_test_id("outcome-message-id").inner_text()
    assert demo.wait_for_depth("q.a", 1) == 1
    # The form now carries a fresh token: a deliberate second click publishes again. It is
    # also the marker: a second publish from the double click would have reached the
    # publisher before it, so once this one is confirmed q.a would hold three.
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_test_id("outcome-message-id")).not_to_have_text(first_id)
    expect(page.get_by_test_id("outcome-confirm")).to_have_text("confirmed")
    expect(page.get_by_test_id("outcome-duplicate")).to_have_count(0)
    assert demo.wait_for_depth("q.a", 2) == 2


def test_repeat_shows_progress_and_cancel_stops_it(publisher_page: Page, demo: DemoTopology):
    page = publisher_page
    page.get_by_label("Routing key").fill("a.b")
    page.get_by_label("Copies").fill("100000")
    page.get_by_label("Rate (msg/s)").fill("400")
    page.get_by_role("button", name="Publish", exact=True).click()
    progress = page.get_by_test_id("repeat-progress")
    expect(progress.get_by_test_id("run-state")).to_have_text("running")
    counts = progress.get_by_test_id("run-counts")
    expect(counts).to_contain_text("of 100000 published")
    shown_first = counts.locator("strong").inner_text()
    expect(counts.locator("strong")).not_to_have_text(shown_first)  # the progress polls
    page.get_by_role("button", name="Cancel").click()
    expect(progress.get_by_test_id("run-state")).to_have_text("cancelled", timeout=30_000)
    expect(progress.get_by_test_id("run-rate")).to_contain_text("msg/s")
    published = int(progress.get_by_test_id("run-counts").locator("strong").inner_text())
    assert 0 < published < 2000
    assert demo.wait_for_depth("q.a", published) == published


def test_a_saved_template_publishes_again_in_one_click(publisher_page: Page, demo: DemoTopology):
    page = publisher_page
    page.get_by_label("Routing key").fill("a.template")
    page.get_by_label("Body", exact=True).fill("from a template")
    page.get_by_label("Template name").fill("my <b>order</b>")
    page.get_by_role("button", name="Save as template").click()
    templates = page.get_by_test_id("publish-templates")
    expect(templates.get_by_test_id("template")).to_contain_text("my <b>order</b>")
    page.reload()
    page.get_by_role("button", name="Publish my <b>order</b>").click()
    expect(page.get_by_test_id("outcome-confirm")).to_have_text("confirmed")
    assert demo.wait_for_depth("q.a", 1) == 1


def test_a_user_without_the_permission_sees_the_form_disabled_and_why(
    page: Page, live_dashboard, user, demo: DemoTopology
):
    sign_in(page, live_dashboard.url, username=user.username)
    page.get_by_role("link", name="Publish").click()
    expect(page.get_by_test_id("publish-disabled-reason")).to_contain_text(
        "may not publish messages"
    )
    expect(page.get_by_role("button", name="Publish", exact=True)).to_be_disabled()
    expect(page.get_by_label("Routing key")).to_be_disabled()
