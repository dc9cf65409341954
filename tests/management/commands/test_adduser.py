"""`manage.py adduser NAME --role ROLE [--vhosts PATTERNS] [--password-stdin]`."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from flows import access, audit
from flows.access import Action
from flows.login_links import redeem_login_link
from flows.models import AuditEntry
from tests.support.accounts import TEST_PASSWORD, make_user

pytestmark = pytest.mark.django_db


def adduser(*args: str, stdin: str | None = None, monkeypatch=None) -> str:
    out = io.StringIO()
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command("adduser", *args, stdout=out)
    return out.getvalue()


def test_a_password_from_standard_input_signs_in_and_is_never_printed(monkeypatch):
    output = adduser(
        "carol", "--role", "publisher", "--password-stdin",
        stdin=f"{TEST_PASSWORD}\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert "Created 'carol': role publisher" in output
    assert TEST_PASSWORD not in output and "/accounts/link/" not in output
    user = authenticate(username="carol", password=TEST_PASSWORD)
    assert user is not None and access.role_of(user) == "publisher"
    assert access.can(user, Action.PUBLISH) and not access.can(user, Action.VIEW_AUDIT)


def test_without_a_password_it_prints_a_one_time_sign_in_link():
    output = adduser("dave", "--role", "viewer", "--base-url", "http://dash.example:8000/")
    match = re.search(r"http://dash\.example:8000/accounts/link/([\w-]+)/", output)
    assert match, output
    user = get_user_model().objects.get(username="dave")
    assert not user.has_usable_password()
    assert redeem_login_link(match.group(1)) == user
    assert redeem_login_link(match.group(1)) is None  # once


def test_vhosts_limit_the_account():
    adduser("erin", "--role", "viewer", "--vhosts", "demo-*, staging")
    user = get_user_model().objects.get(username="erin")
    assert access.vhost_patterns(user) == ["demo-*", "staging"]
    names = ["/", "demo-belery", "staging"]
    assert access.allowed_vhosts(user, names) == ["demo-belery", "staging"]


def test_an_existing_account_changes_role_and_the_change_is_audited():
    make_user("fay", role="viewer", password="pw-fay-12345")
    output = adduser("fay", "--role", "admin")
    assert "Updated 'fay': role admin" in output
    assert "/accounts/link/" not in output  # she keeps her password
    user = get_user_model().objects.get(username="fay")
    assert access.role_of(user) == "admin"
    assert user.groups.filter(name="viewer").count() == 0
    entry = AuditEntry.objects.get(action=audit.ROLE_CHANGE)
    assert entry.target == "fay"
    assert entry.details == {"role": "admin", "previous_role": "viewer", "created": False}


@pytest.mark.parametrize(
    ("stdin", "message"),
    [("123\n", "Password refused"), ("\n", "no password on standard input")],
)
def test_a_weak_or_missing_password_is_refused_and_no_account_is_made(monkeypatch, stdin, message):
    with pytest.raises(CommandError, match=message):
        adduser("gil", "--role", "viewer", "--password-stdin", stdin=stdin, monkeypatch=monkeypatch)
    assert not get_user_model().objects.filter(username="gil").exists()
    assert not AuditEntry.objects.exists()


def test_an_unknown_role_is_refused():
    with pytest.raises(CommandError, match="invalid choice: 'owner'"):
        adduser("hal", "--role", "owner")
