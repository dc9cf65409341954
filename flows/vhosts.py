"""Which vhost a user is looking at: one selection shared by every page.

`?vhost=<name>` on any page selects it and remembers it in the session; without the
parameter, the session's choice stands; the default is `/`.
"""

from __future__ import annotations

from django.http import HttpRequest

DEFAULT_VHOST = "/"
SESSION_KEY = "flows.vhost"


def selected_vhost(request: HttpRequest) -> str:
    requested = request.GET.get("vhost")
    if requested is not None and requested != "":
        if hasattr(request, "session") and request.session.get(SESSION_KEY) != requested:
            request.session[SESSION_KEY] = requested
        return requested
    if hasattr(request, "session"):
        return request.session.get(SESSION_KEY, DEFAULT_VHOST)
    return DEFAULT_VHOST
