"""Small helpers for the dashboard's JSON endpoints (`/api/...`).

`@json_api` makes a view speak JSON in every case a script can meet:

- an anonymous caller gets `401 {"error": ...}` instead of the login page's redirect, which
  a `fetch()` would silently follow and then fail to parse;
- a wrong method gets `405`;
- typed errors become a JSON body with a status that says whose fault it is: `ApiError`
  (bad input: 400 and the offending `field`, or the status it carries), a missing vhost
  or object `404`, a broker that does not answer `503`, a broker that refuses the
  dashboard `502`;
- anything unexpected is logged with its traceback and answered `500 {"error": ...}`
  without one, so no HTML error page or stack trace reaches the caller.

Views return plain data (a dict) or their own `HttpResponse`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from flows.broker.errors import (
    BrokerAuthFailed,
    BrokerError,
    BrokerNotFound,
    BrokerRefused,
    BrokerUnreachable,
    ManagementPluginMissing,
)

LOGGER = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the view cannot serve, with a message meant for the caller."""

    def __init__(self, message: str, *, status: int = 400, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


def error_response(message: str, *, status: int, field: str | None = None, **extra: Any):
    body: dict[str, Any] = {"error": message, "status": status}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


def broker_error_status(error: BrokerError) -> int:
    """The HTTP status that tells a caller what went wrong with the broker."""
    if isinstance(error, BrokerNotFound):
        return 404
    if isinstance(error, BrokerUnreachable | ManagementPluginMissing):
        return 503  # the dependency is down: try again later
    if isinstance(error, BrokerAuthFailed | BrokerRefused):
        return 502  # the broker refused the dashboard: a gateway problem, not the caller's
    return 502


def json_api(
    view: Callable[..., Any] | None = None, *, methods: Iterable[str] = ("GET",)
) -> Callable[..., Any]:
    """Decorate a view as a JSON endpoint (see the module docstring)."""
    allowed = tuple(method.upper() for method in methods)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return error_response("Sign in to use the dashboard's API", status=401)
            if request.method not in allowed:
                response = error_response(
                    f"Method {request.method} not allowed; use {', '.join(allowed)}", status=405
                )
                response["Allow"] = ", ".join(allowed)
                return response
            try:
                result = func(request, *args, **kwargs)
            except ApiError as exc:
                return error_response(exc.message, status=exc.status, field=exc.field)
            except BrokerError as exc:
                return error_response(exc.message, status=broker_error_status(exc))
            except Exception:
                LOGGER.exception("JSON API %s failed", request.path)
                return error_response(
                    "The dashboard failed to answer this request (see its log)", status=500
                )
            if isinstance(result, HttpResponse):
                return result
            return JsonResponse(result, safe=False, json_dumps_params={"ensure_ascii": False})

        # The view answers anonymous callers itself (401), instead of the middleware's redirect.
        wrapper.login_required = False  # type: ignore[attr-defined]
        return wrapper

    return decorate(view) if view is not None else decorate


def required_param(request: HttpRequest, name: str, *, allow_empty: bool = False) -> str:
    value = request.GET.get(name)
    if value is None or (value == "" and not allow_empty):
        raise ApiError(f"The {name!r} parameter is required", field=name)
    return value


__all__ = ["ApiError", "broker_error_status", "error_response", "json_api", "required_param"]
