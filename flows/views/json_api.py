"""The one convention of the dashboard's JSON API: every `/api/...` view is a `@json_api`.

Every answer is JSON, errors included, and every error has one shape:

    {"error": "<one sentence for a person>", "fields": {"<field>": "<what is wrong with it>"}}

`fields` names each request field to blame (a body field, a query parameter, a nested one
as `properties.headers`), so one answer reports every bad field at once; it is `{}` when
no field is to blame. The HTTP status says whose fault it is:

- 400 bad input: malformed JSON, a body that is not an object, an unknown field or query
  parameter (refused, never ignored: a typo must not pass silently), an invalid value;
- 401 not signed in (a session cookie, or HTTP Basic with a dashboard account), instead
  of the login page's redirect, which a `fetch()` would follow and then fail to parse;
- 403 signed in but not allowed (`flows.access`: no role, a role without the endpoint's
  action, a vhost outside the user's limits, a write on a read-only dashboard);
  404 no such object (vhost, exchange, run, `/api/` path);
  405 a wrong method (with `Allow`); 413 a body too large to read; 415 a request body
  that is not `Content-Type: application/json`;
- 502 the broker refused the dashboard; 503 the broker does not answer;
- 500 only for a bug: logged with its traceback, answered without one.

CSRF: requests with a body must be `application/json`, which a cross-site form cannot
send and a cross-origin script cannot send without a CORS preflight this site never
grants; so no CSRF token is asked for.

Views return plain data (a dict or a list) or their own `HttpResponse`, and raise
`ApiError` (or a `BrokerError`) for everything else.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import functools
import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from flows import access
from flows.access import AccessDenied, Action
from flows.broker import errors as broker_errors

LOGGER = logging.getLogger(__name__)

# The names a JSON object may hold; a name mapped to a Schema is a nested object whose own
# names are checked too, a name mapped to None takes any value (header tables, say).
Schema = Mapping[str, "Schema | None"]

METHODS_WITH_A_BODY = frozenset({"POST", "PUT", "PATCH"})
BASIC_CHALLENGE = 'Basic realm="flows"'


class ApiError(Exception):
    """A request the view cannot serve, with a message meant for the caller.

    `field` blames one field with the message itself; `fields` blames several, each with
    its own message.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        field: str | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.fields = dict(fields or {})
        if field is not None:
            self.fields.setdefault(field, message)


def error_response(
    message: str, *, status: int, fields: Mapping[str, str] | None = None
) -> JsonResponse:
    return JsonResponse(
        {"error": message, "fields": dict(fields or {})},
        status=status,
        json_dumps_params={"ensure_ascii": False},
    )


def broker_error_status(error: broker_errors.BrokerError) -> int:
    """The HTTP status that tells a caller what went wrong with the broker."""
    if isinstance(error, broker_errors.BrokerNotFound):
        return 404
    if isinstance(error, broker_errors.BrokerUnreachable | broker_errors.ManagementPluginMissing):
        return 503  # the dependency is down: try again later
    return 502  # the broker refused the dashboard: a gateway problem, not the caller's


# --- who is asking ------------------------------------------------------------------------------


def api_user(request: HttpRequest) -> Any:
    """The session's user, or a dashboard account given by HTTP Basic authentication."""
    if request.user.is_authenticated:
        return request.user
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, _, password = decoded.partition(":")
    return authenticate(request, username=username, password=password)


def unauthorised(request: HttpRequest) -> JsonResponse:
    response = error_response(
        "Sign in to use the dashboard's API (a session cookie, or HTTP Basic with your account)",
        status=401,
    )
    # A page's own fetch() (Sec-Fetch-Mode cors) whose session expired would otherwise make
    # the browser pop up its password dialog; scripts, curl and navigations get the challenge.
    if request.headers.get("Sec-Fetch-Mode", "navigate") == "navigate":
        response["WWW-Authenticate"] = BASIC_CHALLENGE
    return response


# --- what is asked ------------------------------------------------------------------------------


def unknown_fields(
    data: Mapping[str, Any], schema: Schema, *, prefix: str = "", what: str = "field"
) -> dict[str, str]:
    """One message per name in `data` (and its nested objects) that `schema` does not know."""
    errors: dict[str, str] = {}
    for name, value in data.items():
        path = f"{prefix}{name}"
        if name not in schema:
            guesses = difflib.get_close_matches(name, list(schema), n=1)
            hint = f"; did you mean {guesses[0]!r}?" if guesses else ""
            errors[path] = f"unknown {what}{hint}"
            continue
        nested = schema[name]
        if nested is not None and isinstance(value, Mapping):
            errors.update(unknown_fields(value, nested, prefix=f"{path}.", what=what))
    return errors


def refuse_unknown(data: Mapping[str, Any], schema: Schema, *, what: str = "field") -> None:
    errors = unknown_fields(data, schema, what=what)
    if errors:
        names = ", ".join(repr(name) for name in errors)
        plural = "s" if len(errors) > 1 else ""
        raise ApiError(f"Unknown {what}{plural} {names}", fields=errors)


def read_json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object; an empty body is the empty object."""
    if request.content_type != "application/json":
        raise ApiError("Send the fields as JSON, with Content-Type: application/json", status=415)
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError("The request body is too large", status=413) from None
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ApiError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError("The request body must be a JSON object of fields")
    return data


def required_param(request: HttpRequest, name: str, *, allow_empty: bool = False) -> str:
    value = request.GET.get(name)
    if value is None or (value == "" and not allow_empty):
        raise ApiError(f"The {name!r} parameter is required", field=name)
    return value


# --- the decorator ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JsonApiDeclaration:
    """What a `@json_api` view declared, kept on the view for its OpenAPI description."""

    methods: tuple[str, ...]
    query: tuple[str, ...]
    body: Schema | None
    action: Action
    signed_in: bool


def json_api(
    view: Callable[..., Any] | None = None,
    *,
    methods: Iterable[str] = ("GET",),
    query: Collection[str] = (),
    body: Schema | None = None,
    action: Action = Action.VIEW,
    signed_in: bool = True,
) -> Callable[..., Any]:
    """Decorate a view as a JSON endpoint (see the module docstring).

    `query` names the query parameters it takes, `body` the fields of the JSON object a
    POST carries; anything else is refused with a 400 naming it. A view that declares a
    `body` is called with it as the `body` keyword argument.

    `action` is what the caller must be allowed (`flows.access`), checked before anything
    else is read; the vhost a request names is checked where the view knows it
    (`access.require(user, action, vhost)`), and an `AccessDenied` is answered 403.

    `signed_in=False` is for a view whose URL carries its own credential (an audience link's
    token, `flows.audience`): it decides who may call it, and `action` is not checked;
    nothing else of the convention changes.
    """
    allowed = tuple(method.upper() for method in methods)
    query_schema: Schema = dict.fromkeys(query)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if signed_in:
                user = api_user(request)
                if user is None:
                    return unauthorised(request)
                request.user = user
                refusal = access.refusal(user, action)
                if refusal is not None:
                    return error_response(refusal.message, status=refusal.status)
            if request.method not in allowed:
                response = error_response(
                    f"Method {request.method} not allowed; use {', '.join(allowed)}", status=405
                )
                response["Allow"] = ", ".join(allowed)
                return response
            try:
                refuse_unknown(request.GET, query_schema, what="query parameter")
                if request.method in METHODS_WITH_A_BODY:
                    data = read_json_body(request)
                    refuse_unknown(data, body or {})
                    if body is not None:
                        kwargs["body"] = data
                result = func(request, *args, **kwargs)
            except ApiError as exc:
                return error_response(exc.message, status=exc.status, fields=exc.fields)
            except AccessDenied as exc:
                return error_response(exc.message, status=exc.status)
            except broker_errors.BrokerError as exc:
                return error_response(exc.message, status=broker_error_status(exc))
            except Exception:
                LOGGER.exception("JSON API %s failed", request.path)
                return error_response(
                    "The dashboard failed to answer this request (see its log)", status=500
                )
            if isinstance(result, HttpResponse):
                return result
            return JsonResponse(result, safe=False, json_dumps_params={"ensure_ascii": False})

        wrapper.access_action = action  # type: ignore[attr-defined]
        # What `flows.views.openapi` describes: the declaration is the one source of truth.
        wrapper.json_api = JsonApiDeclaration(  # type: ignore[attr-defined]
            methods=allowed, query=tuple(query), body=body, action=action, signed_in=signed_in
        )
        # The view answers anonymous callers itself (401), instead of the middleware's redirect.
        return csrf_exempt(login_not_required(wrapper))

    return decorate(view) if view is not None else decorate


@csrf_exempt
@login_not_required
def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any other `/api/` path: the same JSON 401 or 404, never Django's HTML error page."""
    if api_user(request) is None:
        return unauthorised(request)
    return error_response(f"No API endpoint at {request.path}", status=404)


__all__ = [
    "ApiError",
    "JsonApiDeclaration",
    "Schema",
    "api_not_found",
    "api_user",
    "broker_error_status",
    "error_response",
    "json_api",
    "read_json_body",
    "refuse_unknown",
    "required_param",
    "unknown_fields",
]
