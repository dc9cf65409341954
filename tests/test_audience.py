"""Audience links (`flows.audience`): made, found, expired and revoked, for a scenario loaded on
the real broker."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from flows import audience
from flows.models import AudienceLink


def made(user, vhost: str, lifetime: str = audience.DEFAULT_LIFETIME) -> audience.CreatedLink:
    return audience.create_link(user, scenario="topics", vhost=vhost, lifetime=lifetime)


def test_only_the_tokens_sha256_is_stored(link_maker, loaded_topics):
    created = made(link_maker, loaded_topics)
    row = AudienceLink.objects.values().get(pk=created.link.pk)
    assert row["token_sha256"] == hashlib.sha256(created.token.encode()).hexdigest()
    assert created.token not in {str(value) for value in row.values()}
    assert len(created.token) >= 43  # 32 random bytes, base64url
    assert audience.find_link(created.token) == created.link
    assert audience.find_link(created.token[:-1]) is None
    assert audience.find_link(row["token_sha256"]) is None  # the stored hash opens nothing


def test_every_link_has_a_token_of_its_own(link_maker, loaded_topics):
    tokens = {made(link_maker, loaded_topics).token for _ in range(5)}
    assert len(tokens) == 5


@pytest.mark.parametrize(("lifetime", "hours"), [("1h", 1), ("4h", 4), ("24h", 24)])
def test_a_link_works_for_the_chosen_lifetime(link_maker, loaded_topics, lifetime, hours):
    before = timezone.now()
    link = made(link_maker, loaded_topics, lifetime).link
    expected = before + timedelta(hours=hours)
    assert expected <= link.expires_at <= timezone.now() + timedelta(hours=hours)
    assert (link.vhost, link.scenario, link.created_by) == (loaded_topics, "topics", link_maker)
    assert audience.why_not_active(link) is None


def test_the_default_lifetime_is_four_hours():
    assert audience.LIFETIMES[audience.DEFAULT_LIFETIME].duration == timedelta(hours=4)


@pytest.mark.parametrize("lifetime", ["2h", "", "forever", "1H"])
def test_a_lifetime_not_offered_is_refused(link_maker, loaded_topics, lifetime):
    with pytest.raises(audience.AudienceRefused, match="Choose how long"):
        made(link_maker, loaded_topics, lifetime)
    assert not AudienceLink.objects.exists()


def test_a_link_is_only_for_a_vhost_the_scenario_is_loaded_in(link_maker, loaded_topics):
    with pytest.raises(audience.AudienceRefused, match="before sharing it"):
        audience.create_link(link_maker, scenario="topics", vhost=f"{loaded_topics}-other")
    with pytest.raises(audience.AudienceRefused, match="before sharing it"):
        audience.create_link(link_maker, scenario="events", vhost=loaded_topics)
    assert not AudienceLink.objects.exists()


@pytest.mark.parametrize(
    ("kind", "may"),
    [("no permission", False), ("publisher", False), ("link maker", True), ("superuser", True)],
)
def test_who_may_make_links(django_user_model, loaded_topics, kind, may):
    user = django_user_model.objects.create_user(
        username="someone", is_superuser=kind == "superuser"
    )
    codename = {"publisher": "publish_messages", "link maker": "create_audience_links"}.get(kind)
    if codename:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    assert (audience.refusal(user) is None) is may
    if may:
        made(user, loaded_topics)
    else:
        with pytest.raises(audience.AudienceRefused) as refused:
            made(user, loaded_topics)
        assert refused.value.forbidden
        assert "flows.create_audience_links" in refused.value.message
    assert AudienceLink.objects.count() == (1 if may else 0)


def test_an_anonymous_visitor_may_not_make_links(loaded_topics):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(audience.AudienceRefused):
        made(AnonymousUser(), loaded_topics)


def test_an_expired_link_stops_working(link_maker, loaded_topics):
    link = made(link_maker, loaded_topics).link
    AudienceLink.objects.filter(pk=link.pk).update(expires_at=timezone.now())
    assert audience.recheck(link.pk) == audience.EXPIRED
    assert audience.active_links(scenario="topics", vhost=loaded_topics) == []


def test_a_revoked_link_stops_working_and_leaves_the_list(link_maker, loaded_topics):
    kept, revoked = made(link_maker, loaded_topics).link, made(link_maker, loaded_topics).link
    audience.revoke_link(link_maker, link_id=revoked.pk, scenario="topics", vhost=loaded_topics)
    assert audience.recheck(revoked.pk) == audience.REVOKED
    assert audience.recheck(kept.pk) is None
    assert audience.active_links(scenario="topics", vhost=loaded_topics) == [kept]
    revoked.refresh_from_db()
    first_revoked_at = revoked.revoked_at
    # Revoking again changes nothing (and still closes any socket left).
    audience.revoke_link(link_maker, link_id=revoked.pk, scenario="topics", vhost=loaded_topics)
    revoked.refresh_from_db()
    assert revoked.revoked_at == first_revoked_at


def test_a_link_is_revoked_only_from_its_own_scenario_and_vhost(link_maker, loaded_topics):
    link = made(link_maker, loaded_topics).link
    for scenario, vhost in [("events", loaded_topics), ("topics", "/")]:
        with pytest.raises(audience.AudienceRefused, match="No such audience link"):
            audience.revoke_link(link_maker, link_id=link.pk, scenario=scenario, vhost=vhost)
    assert audience.recheck(link.pk) is None


def test_a_user_who_may_not_make_links_may_not_revoke_them(
    django_user_model, link_maker, loaded_topics
):
    link = made(link_maker, loaded_topics).link
    other = django_user_model.objects.create_user(username="other")
    with pytest.raises(audience.AudienceRefused) as refused:
        audience.revoke_link(other, link_id=link.pk, scenario="topics", vhost=loaded_topics)
    assert refused.value.forbidden
    assert audience.recheck(link.pk) is None


def test_a_link_stops_working_when_its_maker_may_no_longer_make_links(link_maker, loaded_topics):
    link = made(link_maker, loaded_topics).link
    link_maker.user_permissions.clear()
    assert audience.recheck(link.pk) == audience.WITHDRAWN


@pytest.mark.parametrize(
    ("revoked", "expires_in_s", "state"),
    [
        (False, 60, "active"),
        (False, 0, "expired"),
        (False, -60, "expired"),
        (True, 60, "revoked"),
        (True, -60, "revoked"),  # revoked says more than expired
    ],
)
def test_link_states(link_maker, revoked, expires_in_s, state):
    now = timezone.now()
    link = AudienceLink(
        created_by=link_maker,
        expires_at=now + timedelta(seconds=expires_in_s),
        revoked_at=now if revoked else None,
    )
    assert audience.link_state(link, now) == state


def test_an_unknown_or_empty_token_opens_nothing(db):
    assert audience.find_link("") is None
    assert audience.find_link("not-a-token") is None
    assert audience.why_not_active(None) == audience.UNKNOWN
