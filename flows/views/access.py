"""`flows.access` for pages: each page view declares its action, refusals become a page.

- `@requires(Action.X)` on every page view: a signed-in user who may not gets the refusal
  page, 403, with the reason (no role: ask an administrator). The action is kept on the view
  (`access_action`), so a test can check that no route forgot one.
- `page_vhost(request)`: the vhost a page shows, refused (`AccessDenied`) when the user's
  vhost limits leave it out; `AccessDeniedMiddleware` turns any `AccessDenied` a page view
  raises into the same refusal page.

Anonymous visitors never reach these: `LoginRequiredMiddleware` sends them to sign in.
The JSON API has its own face of the same rules (`@json_api(action=...)`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render

from flows import access
from flows.access import AccessDenied, Action
from flows.vhosts import selected_vhost


def refused_page(request: HttpRequest, message: str, *, status: int = 403) -> HttpResponse:
    return render(
        request,
        "403.html",
        {"reason": message, "no_role": message == access.NO_ROLE},
        status=status,
    )


def requires(
    action: Action,
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    def decorate(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            refusal = access.refusal(request.user, action)
            if refusal is not None:
                return refused_page(request, refusal.message, status=refusal.status)
            return view(request, *args, **kwargs)

        wrapper.access_action = action  # type: ignore[attr-defined]
        return wrapper

    return decorate


def page_vhost(request: HttpRequest, vhost: str | None = None) -> str:
    """`vhost`, else the selected one; raises `AccessDenied` outside the user's vhosts."""
    name = vhost if vhost is not None else selected_vhost(request)
    access.require(request.user, Action.VIEW, name)
    return name


class AccessDeniedMiddleware:
    """A page view that raised `AccessDenied` answers with the refusal page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, AccessDenied):
            return refused_page(request, exception.message, status=exception.status)
        return None
