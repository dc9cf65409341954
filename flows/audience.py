"""Audience links: a read-only, expiring, revocable URL to a demo vhost's live view.

An administrator (`flows.create_audience_links`) makes one on a scenario page for the people
in the room; whoever holds it sees that scenario's live graph and feed at `/watch/<token>/`,
on a phone too, with no account. The token is the only credential and it is accepted in
exactly three places, each bound to the link's vhost: the watch page, its topology JSON
(`/watch/<token>/topology`) and the live websocket (`/ws/live/?audience=<token>`). No other
view ever reads it, so it can never publish, change a demo run, switch the firehose on, or
see another vhost. Its socket never switches tracing on either: it sees the firehose while
someone allowed to has it on (the speaker's scenario page), bindings otherwise.

Only the token's SHA-256 is stored; the URL is shown once, when it is made. A link stops
working when it expires, when it is revoked (which also closes its open sockets, through
the channel-layer group `audience_group(link)`), or when its maker may no longer make links.

Everything here does blocking I/O (the database; revoking also the channel layer): call it
from a sync view or through `database_sync_to_async`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone

from flows.demo.loading import find_load
from flows.models import AudienceLink

# Whoever a request has; only an account (the project keeps Django's `User`) may make links.
AnyUser = AbstractBaseUser | AnonymousUser

PERMISSION = "flows.create_audience_links"


class Lifetime(NamedTuple):
    name: str
    label: str
    duration: timedelta


# What the scenario page offers: a talk, an afternoon, a day's workshop.
LIFETIMES = {
    lifetime.name: lifetime
    for lifetime in (
        Lifetime("1h", "1 hour", timedelta(hours=1)),
        Lifetime("4h", "4 hours", timedelta(hours=4)),
        Lifetime("24h", "24 hours", timedelta(hours=24)),
    )
}
DEFAULT_LIFETIME = "4h"
# The message type a revocation sends to the link's sockets (`audience_ended` handlers).
ENDED_MESSAGE = "audience.ended"

UNKNOWN = "This audience link is not valid: check that it was copied whole."
EXPIRED = "This audience link has expired: ask the speaker for a new one."
REVOKED = "This audience link was revoked: ask the speaker for a new one."
WITHDRAWN = "This audience link no longer works: whoever made it may not share the demo any more."

LinkState = Literal["active", "expired", "revoked", "withdrawn"]


class AudienceRefused(Exception):
    """The change cannot be made; nothing changed. The message says why, for a person."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.forbidden = forbidden  # the user may not; otherwise the request is wrong


@dataclass(frozen=True)
class CreatedLink:
    """A link just made, with its token: the only moment the token is known."""

    link: AudienceLink
    token: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def audience_group(link_id: int) -> str:
    """The channel-layer group of one link's open sockets."""
    return f"flows-audience.{link_id}"


# --- reading ----------------------------------------------------------------------------------


def refusal(user: AnyUser) -> str | None:
    """Why `user` may not make or revoke audience links, or None when they may."""
    if isinstance(user, User) and user.has_perm(PERMISSION):  # superusers have it
        return None
    return (
        "Your account may not share this demo: audience links take the “Can create audience "
        "links” permission (flows.create_audience_links), which an administrator has."
    )


def find_link(token: str) -> AudienceLink | None:
    """The link the token opens, in whatever state, or None for a token nobody issued."""
    if not token:
        return None
    links = AudienceLink.objects.select_related("created_by")
    return links.filter(token_sha256=digest(token)).first()


def link_state(link: AudienceLink, now: datetime | None = None) -> LinkState:
    now = now or timezone.now()
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at <= now:
        return "expired"
    if refusal(link.created_by) is not None:
        return "withdrawn"
    return "active"


def why_not_active(link: AudienceLink | None) -> str | None:
    """What the audience is told when the link does not work, or None when it does."""
    if link is None:
        return UNKNOWN
    return {"active": None, "expired": EXPIRED, "revoked": REVOKED, "withdrawn": WITHDRAWN}[
        link_state(link)
    ]


def recheck(link_id: int) -> str | None:
    """`why_not_active` of the link as the database has it now."""
    link = AudienceLink.objects.select_related("created_by").filter(pk=link_id).first()
    return why_not_active(link)


def active_links(*, scenario: str, vhost: str) -> list[AudienceLink]:
    """The links of a scenario's vhost that still work, soonest to expire first."""
    return list(
        AudienceLink.objects.filter(
            scenario=scenario, vhost=vhost, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
    )


# --- changing ---------------------------------------------------------------------------------


def create_link(
    user: AnyUser, *, scenario: str, vhost: str, lifetime: str = DEFAULT_LIFETIME
) -> CreatedLink:
    """A new link to `scenario` as loaded in `vhost`; its token is in the answer only."""
    reason = refusal(user)
    if reason or not isinstance(user, User):
        raise AudienceRefused(reason or "Sign in to share this demo.", forbidden=True)
    if lifetime not in LIFETIMES:
        raise AudienceRefused(f"Choose how long the link works: {', '.join(LIFETIMES)}.")
    load = find_load(scenario, vhost)
    if load is None or not load.complete:
        raise AudienceRefused(f"Load {scenario!r} into vhost {vhost!r} before sharing it.")
    token = secrets.token_urlsafe(32)
    link = AudienceLink.objects.create(
        token_sha256=digest(token),
        vhost=vhost,
        scenario=scenario,
        created_by=user,
        expires_at=timezone.now() + LIFETIMES[lifetime].duration,
    )
    # AUDIT: the one place an audience link is created (record `user`, `link`).
    return CreatedLink(link=link, token=token)


def revoke_link(user: AnyUser, *, link_id: int, scenario: str, vhost: str) -> AudienceLink:
    """End a link of that scenario's vhost now, and close the sockets watching through it."""
    reason = refusal(user)
    if reason:
        raise AudienceRefused(reason, forbidden=True)
    link = AudienceLink.objects.filter(pk=link_id, scenario=scenario, vhost=vhost).first()
    if link is None:
        raise AudienceRefused("No such audience link for this scenario.")
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.save(update_fields=["revoked_at"])
        # AUDIT: the one place an audience link is revoked (record `user`, `link`).
    # Sockets check the link when they connect; these are the ones already open.
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(
            audience_group(link.pk), {"type": ENDED_MESSAGE, "message": REVOKED}
        )
    return link
