"""One-time sign-in links for the local demo path (like Jupyter's token URL).

On a first start there is no user and no default password: `manage.py serve` creates a
passwordless user in the `admin` role (`flows.access`) and prints a link that signs in once;
`manage.py adduser` prints one for a new user it gives no password. A link is a random token;
only its SHA-256 is stored, it expires, and redeeming it marks it used atomically.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from flows import access
from flows.models import LoginLink

if TYPE_CHECKING:
    # The project keeps Django's own user model (no AUTH_USER_MODEL), which is what
    # get_user_model() returns and what django.contrib.auth.login() is typed to take.
    from django.contrib.auth.models import User

DEMO_USERNAME = "speaker"
LINK_LIFETIME = timedelta(hours=12)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def needs_login_link() -> bool:
    """True when nobody could sign in with a password: no user, or only passwordless ones."""
    return not any(user.has_usable_password() for user in get_user_model().objects.all())


def demo_user() -> User:
    """The passwordless admin that first-start login links sign in, created on first use."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=DEMO_USERNAME)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    if access.role_of(user) != access.ADMIN:
        access.set_role(user, access.ADMIN)
    return user


def issue_login_link(user: User, *, lifetime: timedelta = LINK_LIFETIME) -> str:
    """Create a link for `user`; return the token (shown once, never stored)."""
    token = secrets.token_urlsafe(32)
    LoginLink.objects.create(
        user=user, token_sha256=_digest(token), expires_at=timezone.now() + lifetime
    )
    return token


def redeem_login_link(token: str) -> User | None:
    """The link's user if the token is valid, unexpired and unused; marks it used."""
    now = timezone.now()
    with transaction.atomic():
        claimed = LoginLink.objects.filter(
            token_sha256=_digest(token), used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now)
        if claimed != 1:
            return None
        return LoginLink.objects.select_related("user").get(token_sha256=_digest(token)).user
