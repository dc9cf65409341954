"""One-time sign-in links: issued only when nobody has a password, usable once."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from flows.login_links import (
    demo_user,
    issue_login_link,
    needs_login_link,
    redeem_login_link,
)
from flows.models import LoginLink

pytestmark = pytest.mark.django_db


def test_a_fresh_install_needs_a_link():
    assert needs_login_link()


def test_a_user_with_a_password_means_no_link_is_needed():
    get_user_model().objects.create_user("ops", password="pw-for-ops-123")
    assert not needs_login_link()


def test_the_passwordless_demo_user_alone_still_needs_a_link():
    demo_user()
    assert needs_login_link()


def test_demo_user_is_a_passwordless_admin():
    from flows import access

    user = demo_user()
    assert access.role_of(user) == access.ADMIN
    assert all(access.can(user, action) for action in access.Action)
    assert not user.has_usable_password()
    assert demo_user().pk == user.pk


def test_a_link_signs_in_once():
    user = demo_user()
    token = issue_login_link(user)
    assert redeem_login_link(token) == user
    assert redeem_login_link(token) is None


def test_an_expired_link_is_refused():
    token = issue_login_link(demo_user(), lifetime=timedelta(seconds=-1))
    assert redeem_login_link(token) is None


def test_an_unknown_token_is_refused():
    issue_login_link(demo_user())
    assert redeem_login_link("not-a-token") is None


def test_only_a_hash_of_the_token_is_stored():
    token = issue_login_link(demo_user())
    stored = LoginLink.objects.get()
    assert token not in stored.token_sha256
    assert len(stored.token_sha256) == 64


def test_login_link_command_prints_a_working_link(client):
    out = io.StringIO()
    call_command("login_link", "--base-url", "http://127.0.0.1:9999", stdout=out)
    match = re.fullmatch(r"http://127\.0\.0\.1:9999(/accounts/link/[\w-]+/)\n", out.getvalue())
    assert match
    response = client.get(match.group(1))
    assert response.status_code == 302 and response.url == "/"
    assert client.get("/").status_code == 200
    # Used once: a second visit goes to the login page with an explanation.
    client.logout()
    again = client.get(match.group(1), follow=True)
    assert "expired or was already used" in again.content.decode()
