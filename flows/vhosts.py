"""Which vhost a user is looking at: one selection shared by every page.

`?vhost=<name>` on any page selects it and remembers it in the session; without the
parameter, the session's choice stands; the default is `/`, or for a user limited to some
vhosts (`flows.access`) the first of theirs. Whether the user may see the vhost chosen is
`flows.access`'s question, asked by each page (`flows.views.access.page_vhost`).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from flows import access

DEFAULT_VHOST = "/"
SESSION_KEY = "flows.vhost"


def selected_vhost(request: HttpRequest) -> str:
    requested = request.GET.get("vhost")
    if requested is not None and requested != "":
        if hasattr(request, "session") and request.session.get(SESSION_KEY) != requested:
            request.session[SESSION_KEY] = requested
        return requested
    user = getattr(request, "user", None)
    if hasattr(request, "session"):
        remembered = request.session.get(SESSION_KEY)
        if remembered is not None and access.vhost_allowed(user, remembered):
            return remembered
    return default_vhost(user)


def default_vhost(user: Any) -> str:
    """`/`, unless the user's vhost limits leave it out: then the first vhost they have."""
    if access.vhost_allowed(user, DEFAULT_VHOST):
        return DEFAULT_VHOST
    from flows.broker_status import vhost_names

    allowed = access.allowed_vhosts(user, vhost_names())
    return allowed[0] if allowed else DEFAULT_VHOST
