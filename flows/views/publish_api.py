"""`POST /api/publish`: the publish form's fields as JSON, the same result as JSON.

Answers JSON in every case, errors included (`{"ok": false, "error": ..., "fields":
{name: message}}`), and never redirects: 401 without a signed-in user (a session cookie,
or HTTP Basic with a dashboard account), 403 without the permission or outside the
allow-list, 400 for bad fields, 404 for an exchange the broker does not have, 503 when
the broker cannot be reached.

CSRF: the API takes only `Content-Type: application/json`, which a cross-site form
cannot send and cross-origin scripts cannot send without a CORS preflight this site never
grants; so the CSRF token is not required here.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from flows.publishing import publisher, service
from flows.publishing.fields import PublishInvalid
from flows.publishing.policy import PublishForbidden


def _error(status: int, message: str, fields: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse({"ok": False, "error": message, "fields": fields or {}}, status=status)


def _api_user(request: HttpRequest):
    """The session's user, or a dashboard account given by HTTP Basic authentication."""
    if request.user.is_authenticated:
        return request.user
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, _, password = decoded.partition(":")
        return authenticate(request, username=username, password=password)
    return None


def _unauthorised() -> JsonResponse:
    response = _error(401, "Sign in first (a session cookie, or HTTP Basic with your account).")
    response["WWW-Authenticate"] = 'Basic realm="flows"'
    return response


def _json_body(request: HttpRequest) -> dict[str, Any] | JsonResponse:
    content_type = request.content_type or ""
    if content_type != "application/json":
        return _error(415, "Send the fields as JSON, with Content-Type: application/json.")
    try:
        data = json.loads(request.body or b"")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _error(400, f"The request body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return _error(400, "The request body must be a JSON object of fields.")
    return data


@csrf_exempt
@login_not_required
@require_http_methods(["POST"])
def api_publish(request: HttpRequest) -> JsonResponse:
    user = _api_user(request)
    if user is None:
        return _unauthorised()
    data = _json_body(request)
    if isinstance(data, JsonResponse):
        return data
    key = data.pop("idempotency_key", None)
    if key is not None and not isinstance(key, str):
        return _error(400, "idempotency_key must be a string", {"idempotency_key": "not a string"})
    try:
        result = service.publish_message(user, data, idempotency_key=key)
    except PublishInvalid as exc:
        return _error(400, "Some fields are not valid.", exc.errors)
    except PublishForbidden as exc:
        return _error(403, exc.message, {exc.field: exc.message} if exc.field else None)
    except publisher.PublishFailed as exc:
        fields = {exc.field: exc.message} if exc.field else None
        if exc.kind == "channel":
            return _error(404 if "404" in exc.message else 400, exc.message, fields)
        return _error(503, exc.message, fields)
    body = {"ok": True, **result.to_json()}
    if result.run is not None:
        body["run_url"] = f"/api/publish/runs/{result.run.id}"
        return JsonResponse(body, status=202)
    return JsonResponse(body)


def _run_for(request: HttpRequest, run_id: str):
    user = _api_user(request)
    if user is None:
        return None, _unauthorised()
    run = publisher.find_run(run_id)
    if run is None or (run.owner_id != user.pk and not user.is_superuser):
        return None, _error(404, "No such repeat run.")
    return run, None


@csrf_exempt
@login_not_required
@require_http_methods(["GET"])
def api_run(request: HttpRequest, run_id: str) -> JsonResponse:
    run, problem = _run_for(request, run_id)
    if problem is not None:
        return problem
    return JsonResponse({"ok": True, "run": run.snapshot()})


@csrf_exempt
@login_not_required
@require_http_methods(["POST"])
def api_run_cancel(request: HttpRequest, run_id: str) -> JsonResponse:
    run, problem = _run_for(request, run_id)
    if problem is not None:
        return problem
    run.cancel()
    run.wait(2)
    return JsonResponse({"ok": True, "run": run.snapshot()})
