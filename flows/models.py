from __future__ import annotations

from django.conf import settings
from django.db import models


class LoginLink(models.Model):
    """A one-time sign-in link, printed by `manage.py serve` for the local demo path.

    Only a hash of the token is stored: the database never holds a usable link.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    token_sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"login link for {self.user} (expires {self.expires_at:%Y-%m-%d %H:%M})"
