"""Who may do what, on which vhost: the dashboard's roles, its per-vhost limits, read-only mode.

One module decides; pages, the JSON API, websockets and the services all ask it:

- **actions** (`Action`) are what a person can do; each is one Django permission
  (`PERMISSIONS`, codenames under the `flows` app);
- **roles** (`ROLES`) are Django groups holding those permissions, made by a migration and
  kept in step with this table after every `migrate` (`sync_roles`). Superusers hold every
  permission. A signed-in user in no role holds nothing, not even `view`: they get a page (or
  a 403) saying to ask an administrator for a role, never a view of a shared broker;
- **vhost limits** (`flows.models.VhostLimit`): shell-style patterns per user or per group; a
  user with any limit sees and changes only the vhosts some pattern of theirs matches, and
  nobody else's. A user with no limit has every vhost;
- **read-only** (`FLOWS_READ_ONLY=true`): every action that writes to a broker (`WRITES`) is
  refused for everyone, superusers included.

`refusal(user, action, vhost)` says why not (or None); `require` raises `AccessDenied`, which
`@json_api` answers as JSON and `flows.views.access` as a page.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from django.conf import settings

APP_LABEL = "flows"


class Action(enum.StrEnum):
    VIEW = "view"  # overview, topology, live view, dry-run
    PUBLISH = "publish"  # publish, repeat runs
    RUN_DEMO = "run_demo"  # start and stop demo publishers and workers
    USE_FIREHOSE = "use_firehose"  # switch tracing on to watch a vhost
    MANAGE_DEMO = "manage_demo"  # load and unload demo scenarios
    MOVE_MESSAGES = "move_messages"  # move (redrive) dead-lettered messages
    CREATE_AUDIENCE_LINKS = "create_audience_links"
    VIEW_AUDIT = "view_audit"
    RECORD = "record"  # start and stop recordings of a vhost (stored in the dashboard's DB)


@dataclass(frozen=True)
class Permission:
    codename: str
    name: str
    model: str  # the flows model whose Meta declares it (Django ties a permission to one)


PERMISSIONS: dict[Action, Permission] = {
    Action.VIEW: Permission("view_dashboard", "Can view the dashboard", "vhostlimit"),
    Action.PUBLISH: Permission(
        "publish_messages", "Can publish messages to the broker", "publishtemplate"
    ),
    Action.RUN_DEMO: Permission(
        "run_demo", "Can run demo scenarios' publishers and workers", "vhostlimit"
    ),
    Action.USE_FIREHOSE: Permission(
        "use_firehose", "Can switch on the firehose (tracing) to watch a vhost", "tapfirehoselease"
    ),
    Action.MANAGE_DEMO: Permission(
        "manage_demo", "Can load and unload demo scenarios", "vhostlimit"
    ),
    Action.MOVE_MESSAGES: Permission(
        "move_messages", "Can move dead-lettered messages", "vhostlimit"
    ),
    Action.CREATE_AUDIENCE_LINKS: Permission(
        "create_audience_links", "Can create audience links", "vhostlimit"
    ),
    Action.VIEW_AUDIT: Permission("view_audit", "Can read the audit log", "vhostlimit"),
    Action.RECORD: Permission("record_vhost", "Can record a vhost's messages", "recording"),
}

VIEWER, PUBLISHER, ADMIN = "viewer", "publisher", "admin"
ROLES: dict[str, frozenset[Action]] = {
    VIEWER: frozenset({Action.VIEW}),
    PUBLISHER: frozenset({Action.VIEW, Action.PUBLISH, Action.RUN_DEMO}),
    ADMIN: frozenset(Action),
}

# What changes a broker: refused for everyone on a read-only dashboard. (Audience links and
# the audit log live in the dashboard's database; the firehose is a write because it
# switches the vhost's tracing on.)
WRITES = frozenset(
    {Action.PUBLISH, Action.RUN_DEMO, Action.USE_FIREHOSE, Action.MANAGE_DEMO, Action.MOVE_MESSAGES}
)

WHAT = {
    Action.VIEW: "use the dashboard",
    Action.PUBLISH: "publish messages",
    Action.RUN_DEMO: "run demo scenarios",
    Action.USE_FIREHOSE: "switch the firehose (tracing) on",
    Action.MANAGE_DEMO: "load or unload demo scenarios",
    Action.MOVE_MESSAGES: "move dead-lettered messages",
    Action.CREATE_AUDIENCE_LINKS: "create audience links",
    Action.VIEW_AUDIT: "read the audit log",
    Action.RECORD: "record a vhost's messages",
}

NO_ROLE = (
    "Your account has no role on this dashboard yet: ask an administrator to give you one "
    "(manage.py adduser NAME --role viewer|publisher|admin)."
)
READ_ONLY = (
    "This dashboard is read-only (FLOWS_READ_ONLY): it makes no changes to the broker, for anyone."
)


def permission_name(action: Action) -> str:
    """`flows.<codename>`, as `user.has_perm` takes it."""
    return f"{APP_LABEL}.{PERMISSIONS[action].codename}"


def roles_with(action: Action) -> list[str]:
    return [role for role, actions in ROLES.items() if action in actions]


# --- the decision -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why not: a sentence for the person, and the HTTP status that says whose fault it is."""

    message: str
    status: int = 403


class AccessDenied(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.message = refusal.message
        self.status = refusal.status


def read_only() -> bool:
    return bool(getattr(settings, "FLOWS_READ_ONLY", False))


def refusal(user: Any, action: Action, vhost: str | None = None) -> Refusal | None:
    """Why `user` may not do `action` (on `vhost`, when given); None when they may.

    Blocking (database): call it from a sync view, or through `database_sync_to_async`.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return Refusal(f"Sign in to {WHAT[action]}.", status=401)
    if action in WRITES and read_only():
        return Refusal(READ_ONLY)
    if not user.has_perm(permission_name(Action.VIEW)):
        return Refusal(NO_ROLE)
    if not user.has_perm(permission_name(action)):
        roles = " or ".join(roles_with(action))
        return Refusal(
            f"Your account may not {WHAT[action]}: that takes the {roles} role "
            f"(permission {permission_name(action)}), which an administrator can give you."
        )
    if vhost is not None and not vhost_allowed(user, vhost):
        return Refusal(
            f"Your account is limited to vhosts matching {', '.join(vhost_patterns(user) or [])}: "
            f"not {vhost!r}."
        )
    return None


def can(user: Any, action: Action, vhost: str | None = None) -> bool:
    return refusal(user, action, vhost) is None


def require(user: Any, action: Action, vhost: str | None = None) -> None:
    """Raise `AccessDenied` unless `user` may do `action` (on `vhost`)."""
    reason = refusal(user, action, vhost)
    if reason is not None:
        raise AccessDenied(reason)


# --- vhost limits -------------------------------------------------------------------------------


def parse_patterns(text: str) -> list[str]:
    """`demo-*, staging` -> ["demo-*", "staging"] (blanks dropped)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def vhost_patterns(user: Any) -> list[str] | None:
    """The patterns limiting `user`'s vhosts, or None when no limit applies (every vhost).

    A user's own limits and those of their groups add up. Cached on the user object for the
    request, as Django caches permissions.
    """
    if getattr(user, "is_superuser", False) or not getattr(user, "is_authenticated", False):
        return None
    if "_flows_vhost_patterns" in user.__dict__:
        cached: list[str] | None = user.__dict__["_flows_vhost_patterns"]
        return cached
    from django.db.models import Q

    from flows.models import VhostLimit

    limits = VhostLimit.objects.filter(Q(user=user) | Q(group__user=user)).distinct()
    patterns: list[str] | None = None
    for limit in limits:
        patterns = [*(patterns or []), *limit.patterns]
    user._flows_vhost_patterns = patterns
    return patterns


def vhost_allowed(user: Any, vhost: str) -> bool:
    patterns = vhost_patterns(user)
    return patterns is None or any(fnmatchcase(vhost, pattern) for pattern in patterns)


def allowed_vhosts(user: Any, names: Iterable[str]) -> list[str]:
    """`names` without the vhosts `user` may not see."""
    return [name for name in names if vhost_allowed(user, name)]


# --- roles as groups ----------------------------------------------------------------------------


def sync_roles(group_model: Any, permission_model: Any, content_type_model: Any) -> None:
    """Make the role groups hold exactly their table's permissions (creating what is missing).

    Takes the models so the migration can pass its historical ones; `FlowsConfig` runs it
    after every `migrate` (and a test database's flush) with the real ones.
    """
    permissions = {}
    for action, spec in PERMISSIONS.items():
        content_type, _ = content_type_model.objects.get_or_create(
            app_label=APP_LABEL, model=spec.model
        )
        permissions[action], _ = permission_model.objects.get_or_create(
            content_type=content_type, codename=spec.codename, defaults={"name": spec.name}
        )
    for role, actions in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set([permissions[action] for action in actions])


def role_of(user: Any) -> str | None:
    """The user's role (the most capable role group they are in), or None."""
    names = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    for role in (ADMIN, PUBLISHER, VIEWER):
        if role in names:
            return role
    return None


def set_role(user: Any, role: str) -> None:
    """Put `user` in `role`'s group, and in no other role's."""
    from django.contrib.auth.models import Group

    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: choose {', '.join(ROLES)}")
    user.groups.remove(*Group.objects.filter(name__in=ROLES).exclude(name=role))
    user.groups.add(Group.objects.get(name=role))
    for cache in ("_perm_cache", "_group_perm_cache", "_flows_vhost_patterns"):
        user.__dict__.pop(cache, None)


def set_vhost_limit(user: Any, patterns: list[str] | None) -> None:
    """Replace the user's own vhost limit (None or []: no limit of their own)."""
    from flows.models import VhostLimit

    VhostLimit.objects.filter(user=user).delete()
    if patterns:
        VhostLimit.objects.create(user=user, patterns=patterns)
    user.__dict__.pop("_flows_vhost_patterns", None)
