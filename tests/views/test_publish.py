"""The publish page's views through Django's test client, against the real broker."""

from __future__ import annotations

import pytest

from flows.models import PublishTemplate
from flows.publishing.fields import parse_publish_request
from flows.runtime import runtime
from tests.support.accounts import make_user
from tests.support.live_server import free_port
from tests.support.publishing import DemoTopology

pytestmark = pytest.mark.django_db


def form(demo: DemoTopology, **extra):
    """What the form posts: the demo message with the form's own checkbox fields."""
    return demo.fields(body_encoding="text", mandatory_present="1", mandatory="true", **extra)


def submit(client, data):
    return client.post("/publish/send", data, HTTP_HX_REQUEST="true")


def test_the_form_prefills_from_the_link_and_escapes_it(api, demo):
    response = api.get("/publish/", {"vhost": demo.vhost, "exchange": "<script>x</script>"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'value="&lt;script&gt;x&lt;/script&gt;"' in html
    assert "<script>x</script>" not in html
    # Suggestions come from the vhost's topology.
    assert '<option value="demo.topic">' in html
    assert '<option value="a.*">' in html


def test_a_form_publish_answers_the_panel_with_the_result(api, demo):
    response = submit(api, form(demo))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="publish-panel"' in html and "<html" not in html
    assert 'data-testid="outcome-confirm">confirmed' in html
    assert "q.all" in html
    assert demo.wait_for_depth("q.a", 1) == 1


def test_without_htmx_the_whole_page_answers(api, demo):
    response = api.post("/publish/send", form(demo, priority="999"))
    assert response.status_code == 400
    assert "<html" in response.content.decode()
    assert "between 0 and 255" in response.content.decode()


def test_a_user_without_the_permission_is_refused_and_nothing_is_published(
    client, demo, django_user_model
):
    client.force_login(make_user("viewer"))
    page = client.get("/publish/", {"vhost": demo.vhost}).content.decode()
    assert "may not publish messages" in page
    assert "<fieldset disabled" in page
    response = submit(client, form(demo))
    assert response.status_code == 403
    assert "may not publish messages" in response.content.decode()
    assert demo.depth("q.a") == 0


def test_the_allow_list_refusal_shows_on_the_exchange_field(api, demo, settings):
    settings.FLOWS_PUBLISH_EXCHANGES = ["test.*"]
    html = submit(api, form(demo)).content.decode()
    assert 'data-testid="error-exchange"' in html
    assert "FLOWS_PUBLISH_EXCHANGES" in html
    assert demo.depth("q.a") == 0


def test_a_broker_that_cannot_be_reached_is_shown_plainly(api, demo, settings):
    settings.AMQP_URL = f"amqp://guest:s3cret@127.0.0.1:{free_port()}/"
    response = submit(api, form(demo))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="publish-error"' in html and "unreachable" in html
    assert "s3cret" not in html


def test_someone_elses_run_is_not_found(api, demo, django_user_model):
    other = make_user("other", password="pw-other-1")
    run = runtime().publishers.start_repeat(
        parse_publish_request({"vhost": demo.vhost, "exchange": "demo.topic", "repeat": "5"}),
        owner_id=other.pk,
    )
    run.wait(5)
    assert api.get(f"/publish/runs/{run.id}").status_code == 404
    assert api.post(f"/publish/runs/{run.id}/cancel").status_code == 404
    response = api.get(f"/api/publish/runs/{run.id}")
    assert (response.status_code, response.json()) == (
        404,
        {"error": "No such repeat run", "fields": {}},
    )


def test_templates_are_private_unless_shared(api, demo, publisher_user, django_user_model):
    api.post("/publish/templates/save", {**form(demo), "template_name": "mine"})
    api.post(
        "/publish/templates/save",
        {**form(demo), "template_name": "ours", "template_shared": "1"},
    )
    assert PublishTemplate.objects.filter(owner=publisher_user).count() == 2
    other = make_user("other", role="publisher")
    api.force_login(other)
    html = api.get("/publish/", {"vhost": demo.vhost}).content.decode()
    assert "ours" in html and "mine" not in html
    mine = PublishTemplate.objects.get(name="mine")
    assert api.post(f"/publish/templates/{mine.pk}/publish").status_code == 404
    ours = PublishTemplate.objects.get(name="ours")
    response = api.post(f"/publish/templates/{ours.pk}/delete")
    assert "Only its owner" in response.content.decode()
    assert PublishTemplate.objects.filter(pk=ours.pk).exists()


def test_saving_a_template_needs_a_name_and_valid_fields(api, demo):
    assert (
        "Give the template a name"
        in api.post("/publish/templates/save", form(demo)).content.decode()
    )
    html = api.post(
        "/publish/templates/save", {**form(demo, priority="x"), "template_name": "t"}
    ).content.decode()
    assert "Not saved" in html and "priority" in html
    assert not PublishTemplate.objects.exists()


def test_a_template_loads_into_the_form(api, demo):
    api.post(
        "/publish/templates/save", {**form(demo, routing_key="k.loaded"), "template_name": "t"}
    )
    template = PublishTemplate.objects.get(name="t")
    html = api.get("/publish/", {"template": template.pk}).content.decode()
    assert 'value="k.loaded"' in html
