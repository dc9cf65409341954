"""`flows.access`: what each role may do, read-only mode, and vhost limits, as tables of cases."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group

from flows import access
from flows.access import Action
from flows.models import VhostLimit
from tests.support.accounts import make_user

pytestmark = pytest.mark.django_db

A = Action
ALLOWED = {
    "viewer": {A.VIEW},
    "publisher": {A.VIEW, A.PUBLISH, A.RUN_DEMO},
    "admin": set(Action),
}


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("role", list(ALLOWED))
def test_each_role_may_do_exactly_what_the_issue_lists(role, action):
    user = make_user(f"u-{role}", role=role)
    assert access.can(user, action) is (action in ALLOWED[role])


def test_the_role_groups_hold_exactly_their_tables_permissions():
    for role, actions in access.ROLES.items():
        codenames = set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))
        assert codenames == {access.PERMISSIONS[action].codename for action in actions}


@pytest.mark.parametrize("action", list(Action))
def test_a_user_with_no_role_may_do_nothing_and_is_told_to_ask_for_one(action):
    refusal = access.refusal(make_user("nobody", role=None), action)
    assert refusal is not None
    assert (refusal.status, refusal.message) == (403, access.NO_ROLE)


@pytest.mark.parametrize("action", list(Action))
def test_anonymous_callers_are_asked_to_sign_in(action):
    refusal = access.refusal(AnonymousUser(), action)
    assert refusal is not None and refusal.status == 401
    assert refusal.message.startswith("Sign in to ")


@pytest.mark.parametrize("action", list(Action))
def test_read_only_refuses_every_write_even_to_a_superuser(settings, action):
    settings.FLOWS_READ_ONLY = True
    root = make_user("root", role=None, is_superuser=True)
    refusal = access.refusal(root, action)
    if action in access.WRITES:
        assert refusal is not None and refusal.message == access.READ_ONLY
    else:
        assert refusal is None


def test_set_role_replaces_the_previous_role():
    user = make_user("changing", role="admin")
    access.set_role(user, "viewer")
    assert access.role_of(user) == "viewer"
    assert not access.can(user, Action.PUBLISH)
    with pytest.raises(ValueError, match="unknown role"):
        access.set_role(user, "owner")


@pytest.mark.parametrize(
    ("patterns", "vhost", "allowed"),
    [
        (None, "anything", True),
        (["demo-*"], "demo-belery", True),
        (["demo-*"], "/", False),
        (["demo-*"], "Demo-belery", False),  # case-sensitive, as vhost names are
        (["/", "staging"], "/", True),
        (["/", "staging"], "staging-2", False),
        ([], "/", False),  # a limit that names nothing leaves nothing
    ],
)
def test_a_vhost_limit_lets_through_what_its_patterns_match(patterns, vhost, allowed):
    user = make_user("limited", role="viewer")
    if patterns is not None:
        VhostLimit.objects.create(user=user, patterns=patterns)
    assert access.vhost_allowed(user, vhost) is allowed
    assert access.can(user, Action.VIEW, vhost) is allowed


def test_group_and_own_limits_add_up_and_superusers_have_none():
    user = make_user("member", role="publisher")
    VhostLimit.objects.create(group=Group.objects.get(name="publisher"), patterns=["team-*"])
    VhostLimit.objects.create(user=user, patterns=["mine"])
    assert access.allowed_vhosts(user, ["team-a", "mine", "/", "other"]) == ["team-a", "mine"]
    refusal = access.refusal(user, Action.PUBLISH, "/")
    assert refusal is not None and "limited to vhosts matching team-*, mine" in refusal.message
    root = make_user("root", role=None, is_superuser=True)
    assert access.vhost_allowed(root, "other")


@pytest.mark.parametrize(
    ("text", "patterns"),
    [("demo-*", ["demo-*"]), (" a , b ,, ", ["a", "b"]), ("", [])],
)
def test_vhost_patterns_are_read_from_a_comma_separated_list(text, patterns):
    assert access.parse_patterns(text) == patterns
