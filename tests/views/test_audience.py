"""Audience links over HTTP: the scenario page's panel, the audience's page and its topology,
and every write the token must not reach."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.utils import timezone

from flows import audience
from flows.demo import service
from flows.demo.loading import unload
from flows.models import AudienceLink
from tests.support.live_page import ws_query
from tests.support.publishing import grant_publish

HTMX = {"HTTP_HX_REQUEST": "true"}
URL = re.compile(r'data-testid="audience-url">(http://testserver/watch/([^/<]+)/)<')


@pytest.fixture
def admin(link_maker) -> Client:
    """Signed in as a user who may make links, and publish (so load and run scenarios)."""
    grant_publish(link_maker)
    client = Client()
    client.force_login(link_maker)
    return client


@pytest.fixture
def link(link_maker, loaded_topics) -> audience.CreatedLink:
    return audience.create_link(link_maker, scenario="topics", vhost=loaded_topics)


def watch(client: Client, token: str, suffix: str = "", **params):
    return client.get(f"/watch/{token}/{suffix}", params)


# --- the scenario page's panel ------------------------------------------------------------------


def test_an_admin_creates_a_link_and_sees_its_url_once(admin, loaded_topics):
    page = admin.get("/demo/topics/", {"vhost": loaded_topics}).content.decode()
    assert 'data-testid="demo-audience"' in page
    assert 'data-testid="audience-none"' in page

    response = admin.post(
        "/demo/topics/audience", {"vhost": loaded_topics, "lifetime": "1h"}, **HTMX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="demo-audience"')  # the part htmx swaps
    _, token = URL.search(html).groups()
    assert audience.find_link(token).vhost == loaded_topics
    assert 'data-copy="audience-url"' in html
    assert html.count(f'data-audience-link="{audience.find_link(token).pk}"') == 1

    # Shown once: the page lists the link, never its URL again.
    page = admin.get("/demo/topics/", {"vhost": loaded_topics}).content.decode()
    assert token not in page
    assert 'data-testid="audience-links"' in page and "Revoke" in page


def test_an_admin_revokes_a_link_from_the_page(admin, link, loaded_topics):
    response = admin.post(
        f"/demo/topics/audience/{link.link.pk}/revoke", {"vhost": loaded_topics}, **HTMX
    )
    html = response.content.decode()
    assert 'data-testid="audience-revoked"' in html
    assert f'data-audience-link="{link.link.pk}"' not in html
    assert audience.recheck(link.link.pk) == audience.REVOKED
    assert watch(Client(), link.token).status_code == 410


def test_a_user_who_may_not_make_links_sees_no_panel_and_is_refused(
    django_user_model, loaded_topics
):
    speaker = django_user_model.objects.create_user(username="speaker")
    grant_publish(speaker)  # may run the demo, not share it
    client = Client()
    client.force_login(speaker)
    page = client.get("/demo/topics/", {"vhost": loaded_topics}).content.decode()
    assert "ws-connect" in page  # the scenario is loaded and shown
    assert 'id="demo-audience"' not in page

    response = client.post("/demo/topics/audience", {"vhost": loaded_topics})
    assert response.status_code == 403
    assert "flows.create_audience_links" in response.content.decode()
    assert not AudienceLink.objects.exists()


def test_a_user_who_may_not_make_links_cannot_revoke_one(django_user_model, link, loaded_topics):
    client = Client()
    client.force_login(django_user_model.objects.create_user(username="viewer"))
    response = client.post(f"/demo/topics/audience/{link.link.pk}/revoke", {"vhost": loaded_topics})
    assert response.status_code == 403
    assert audience.recheck(link.link.pk) is None


def test_a_link_for_a_vhost_where_nothing_is_loaded_is_refused(admin, loaded_topics):
    response = admin.post("/demo/topics/audience", {"vhost": f"{loaded_topics}-x"})
    assert response.status_code == 400
    assert "before sharing it" in response.content.decode()
    assert not AudienceLink.objects.exists()


def test_the_panel_needs_a_post_with_csrf(link_maker, loaded_topics):
    client = Client(enforce_csrf_checks=True)
    client.force_login(link_maker)
    assert client.post("/demo/topics/audience", {"vhost": loaded_topics}).status_code == 403
    assert client.get("/demo/topics/audience", {"vhost": loaded_topics}).status_code == 405
    assert not AudienceLink.objects.exists()


# --- the audience's page ------------------------------------------------------------------------


def test_the_page_shows_the_live_view_read_only_without_signing_in(client, link, loaded_topics):
    response = watch(client, link.token)
    assert response.status_code == 200
    assert response["Referrer-Policy"] == "no-referrer"
    html = response.content.decode()
    assert ws_query(html) == {"vhost": [loaded_topics], "audience": [link.token]}
    assert f'data-graph-api-url="/watch/{link.token}/topology"' in html
    assert "data-graph-open" in html and 'id="feed"' in html
    assert "What to watch for" in html
    for absent in (
        'id="live-filters"',  # filters
        "data-details-url",  # details
        'id="live-consumption"',  # the consumption panel
        "data-firehose-offer",  # the firehose button
        'class="mainnav"',  # navigation
        'class="vhost-picker"',  # the vhost selector
        "<a ",  # any link to another page
        "/publish/",  # the composer
        'id="demo-controls"',  # run controls
        'id="demo-audience"',  # the panel making links
        'data-action="export"',
    ):
        assert absent not in html, absent


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"expires_at": timezone.now()}, 410, audience.EXPIRED),
        ({"revoked_at": timezone.now()}, 410, audience.REVOKED),
    ],
)
def test_a_link_that_ended_says_so(client, link, change, status, message):
    AudienceLink.objects.filter(pk=link.link.pk).update(**change)
    response = watch(client, link.token)
    assert response.status_code == status
    html = response.content.decode()
    assert 'data-testid="audience-ended"' in html
    assert message.replace("'", "&#x27;") in html
    assert "ws-connect" not in html


@pytest.mark.parametrize("token", ["not-a-token", "x" * 43])
def test_an_unknown_link_is_not_found_not_a_sign_in(client, db, token):
    response = watch(client, token)
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_a_link_to_a_scenario_unloaded_since_says_so(client, link, loaded_topics):
    unload("topics", vhost=loaded_topics)
    response = watch(client, link.token)
    assert response.status_code == 404
    assert "not loaded at the moment" in response.content.decode()


# --- its topology -------------------------------------------------------------------------------


def test_the_topology_is_the_links_vhost(client, link, loaded_topics):
    response = watch(client, link.token, "topology", vhost=loaded_topics)
    assert response.status_code == 200
    topology = response.json()
    assert topology["vhost"] == loaded_topics
    assert "food" in {exchange["name"] for exchange in topology["exchanges"]}
    # The graph sends the ETag back: unchanged is a 304, as on /api/topology.
    again = client.get(f"/watch/{link.token}/topology", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    # No vhost: the link's.
    assert watch(client, link.token, "topology").json()["vhost"] == loaded_topics


@pytest.mark.parametrize("other", ["/", "flows-test-elsewhere"])
def test_the_topology_of_another_vhost_is_refused(client, link, loaded_topics, other):
    response = watch(client, link.token, "topology", vhost=other)
    assert response.status_code == 403
    assert response.json() == {
        "error": f"This audience link shows vhost {loaded_topics!r} only",
        "fields": {"vhost": f"This audience link shows vhost {loaded_topics!r} only"},
    }


@pytest.mark.parametrize(
    ("change", "status"),
    [({"expires_at": timezone.now()}, 410), ({"revoked_at": timezone.now()}, 410)],
)
def test_the_topology_of_a_link_that_ended_is_gone(client, link, change, status):
    AudienceLink.objects.filter(pk=link.link.pk).update(**change)
    response = watch(client, link.token, "topology")
    assert response.status_code == status
    assert set(response.json()) == {"error", "fields"}


def test_the_topology_follows_the_json_api_convention(client, link, db):
    assert watch(client, "nope", "topology").status_code == 404
    unknown = watch(client, link.token, "topology", vhsot="x")
    assert unknown.status_code == 400
    assert "did you mean 'vhost'" in unknown.json()["fields"]["vhsot"]
    posted = client.post(f"/watch/{link.token}/topology", content_type="application/json")
    assert posted.status_code == 405


# --- what the token never reaches ---------------------------------------------------------------

A_MESSAGE = {"vhost": "", "exchange": "food", "routing_key": "food.pizza", "body": "hi"}


def test_the_token_cannot_publish(client, link, loaded_topics):
    watch(client, link.token)  # whatever cookies the page sets
    body = json.dumps({**A_MESSAGE, "vhost": loaded_topics})
    attempts = [
        client.post("/api/publish", body, content_type="application/json"),
        client.post(f"/api/publish?audience={link.token}", body, content_type="application/json"),
        client.post(
            "/api/publish",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {link.token}",
        ),
        client.post(
            f"/api/exchanges/{loaded_topics}/food/publish",
            json.dumps(
                {"routing_key": "x", "payload": "x", "payload_encoding": "string", "properties": {}}
            ),
            content_type="application/json",
        ),
    ]
    assert [response.status_code for response in attempts] == [401, 401, 401, 401]
    assert client.get(f"/watch/{link.token}/publish").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/demo/topics/run",
        "/demo/topics/publisher",
        "/demo/topics/workers",
        "/demo/topics/load",
        "/demo/topics/unload",
        "/demo/topics/audience",
        "/publish/send",
    ],
)
def test_the_token_cannot_change_a_demo(link, loaded_topics, path):
    client = Client(enforce_csrf_checks=True)
    watch(client, link.token)
    token = client.cookies["csrftoken"].value if "csrftoken" in client.cookies else ""
    response = client.post(
        f"{path}?audience={link.token}",
        {"vhost": loaded_topics, "action": "start", "csrfmiddlewaretoken": token},
        HTTP_X_CSRFTOKEN=token,
    )
    # Sent to sign in: nothing of the dashboard but the link's views reads the token.
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert service.demo_runs().get("topics", loaded_topics) is None
    assert AudienceLink.objects.count() == 1


@pytest.mark.parametrize(
    "path", ["/api/topology", "/api/route?exchange=food", "/live/consumption", "/topology/"]
)
def test_the_token_opens_no_other_read(client, link, loaded_topics, path):
    separator = "&" if "?" in path else "?"
    response = client.get(f"{path}{separator}vhost={loaded_topics}&audience={link.token}")
    assert response.status_code in (302, 401)


def test_the_live_details_stay_for_signed_in_users(client, link):
    watch(client, link.token)
    response = client.post("/live/details", {"event": "{}"})
    assert response.status_code == 302
