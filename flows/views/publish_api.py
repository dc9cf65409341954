"""Publishing over the JSON API (conventions: `flows.views.json_api`).

- `POST /api/publish`: the publish form's fields as a JSON object;
- `POST /api/exchanges/<vhost>/<exchange>/publish`: the body RabbitMQ's management API
  takes at the same path (`flows.publishing.management_body`), so a script written for it
  works by changing only its base URL;
- `GET /api/publish/runs/<id>` and `POST .../cancel`: a repeat run's progress, and stopping it.

Both publish bodies go through `service.publish_message` and answer the same result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from flows.access import Action
from flows.publishing import publisher, service
from flows.publishing.fields import PUBLISH_FIELDS, PublishInvalid
from flows.publishing.management_body import MANAGEMENT_BODY, management_field, publish_fields
from flows.publishing.policy import PublishForbidden
from flows.publishing.runs import RunStatus
from flows.shared_store import SharedStoreDown
from flows.views.json_api import ApiError, json_api

PUBLISH_BODY = dict.fromkeys((*PUBLISH_FIELDS, "idempotency_key"))


def _native(name: str) -> str:
    return name


def publish(
    request: HttpRequest,
    fields: Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
    field_name: Callable[[str], str] = _native,
) -> dict[str, Any] | JsonResponse:
    """Publish and answer; errors name fields by `field_name` (the caller's names for them)."""

    def blame(field: str | None, message: str) -> dict[str, str]:
        return {field_name(field): message} if field else {}

    try:
        result = service.publish_message(request.user, fields, idempotency_key=idempotency_key)
    except PublishInvalid as exc:
        errors = {field_name(name): message for name, message in exc.errors.items()}
        raise ApiError("Some fields are not valid", fields=errors) from exc
    except PublishForbidden as exc:
        raise ApiError(exc.message, status=403, fields=blame(exc.field, exc.message)) from exc
    except publisher.PublishFailed as exc:
        # A channel error is the broker refusing this message (404: no such exchange); a
        # refused connection is the broker refusing the vhost (502, on `vhost`); anything
        # else is the broker or the connection to it failing (503: try again).
        if exc.kind == "channel":
            status = 404 if "404" in exc.message else 400
        else:
            status = 502 if exc.kind == "refused" else 503
        raise ApiError(exc.message, status=status, fields=blame(exc.field, exc.message)) from exc
    answer = result.to_json()
    if result.run is not None:
        answer["run_url"] = reverse("api-publish-run", args=[result.run.id])
        return JsonResponse(answer, status=202)
    # What the management API answers: the broker took it and did not return it.
    answer["routed"] = answer["status"] == "routed"
    return answer


@json_api(methods=("POST",), body=PUBLISH_BODY, action=Action.PUBLISH)
def api_publish(request: HttpRequest, *, body: dict[str, Any]) -> dict[str, Any] | JsonResponse:
    key = body.pop("idempotency_key", None)
    if key is not None and not isinstance(key, str):
        raise ApiError("idempotency_key must be a string", field="idempotency_key")
    return publish(request, body, idempotency_key=key)


def management_target(request: HttpRequest, names: str) -> tuple[str, str]:
    """The vhost and exchange of `/api/exchanges/<vhost>/<exchange>/publish`.

    The server decodes `%2F` before routing, so `names` is ambiguous when a name holds a
    slash (vhost `/` is the common case); ASGI servers keep the undecoded path, which
    splits exactly. Without it, the vhost takes every slash but the last.
    """
    parts = (getattr(request, "scope", {}).get("raw_path") or b"").split(b"/")
    if len(parts) >= 6 and parts[-5:-3] == [b"api", b"exchanges"] and parts[-1] == b"publish":
        # Bytes that are not UTF-8 survive as surrogates, which the field checks refuse.
        raw_vhost, raw_exchange = (unquote_to_bytes(part) for part in parts[-3:-1])
        return (
            raw_vhost.decode(errors="surrogateescape"),
            raw_exchange.decode(errors="surrogateescape"),
        )
    vhost, _, exchange = names.rpartition("/")
    return vhost, exchange


@json_api(methods=("POST",), body=MANAGEMENT_BODY, action=Action.PUBLISH)
def api_management_publish(
    request: HttpRequest, names: str, *, body: dict[str, Any]
) -> dict[str, Any] | JsonResponse:
    vhost, exchange = management_target(request, names)
    try:
        fields = publish_fields(body, vhost=vhost, exchange=exchange)
    except PublishInvalid as exc:
        raise ApiError("Some fields are not valid", fields=exc.errors) from exc
    return publish(request, fields, field_name=management_field)


def _found(find: Callable[[], RunStatus | None]) -> RunStatus:
    try:
        run = find()
    except SharedStoreDown as exc:
        raise ApiError(exc.message, status=503) from exc
    if run is None:
        raise ApiError("No such repeat run", status=404)
    return run


@json_api
def api_run(request: HttpRequest, run_id: str) -> dict[str, Any]:
    return {"run": _found(lambda: service.own_run(request.user, run_id)).to_json()}


@json_api(methods=("POST",))
def api_run_cancel(request: HttpRequest, run_id: str) -> dict[str, Any]:
    return {"run": _found(lambda: service.cancel_own_run(request.user, run_id)).to_json()}
