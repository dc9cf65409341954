"""The topology page and its JSON API: `/topology/`, `/api/topology`, `/api/route`."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from flows.broker.errors import BrokerError, BrokerNotFound
from flows.routing_rules.dry_run import UnknownExchange
from flows.routing_rules.prediction import predict
from flows.runtime import runtime
from flows.topology.shapes import DEFAULT_EXCHANGE_NOTE
from flows.vhosts import DEFAULT_VHOST, SESSION_KEY, selected_vhost
from flows.views.json_api import ApiError, json_api, required_param

# Above this many objects the page asks the user to search or focus instead of drawing
# everything: a layered layout of thousands of nodes is neither fast nor readable.
GRAPH_NODE_LIMIT = 300


def _api_vhost(request: HttpRequest) -> str:
    """`?vhost=`, else the page's selected vhost. The API never changes the selection."""
    requested = request.GET.get("vhost")
    if requested:
        return requested
    return request.session.get(SESSION_KEY, DEFAULT_VHOST)


def parse_headers_param(raw: str | None) -> dict[str, Any] | None:
    """The `headers` parameter: a JSON object, or absent/empty for none."""
    if raw is None or raw.strip() == "":
        return None
    try:
        headers = json.loads(raw)
    except ValueError as exc:
        raise ApiError(f"headers is not valid JSON: {exc}", field="headers") from exc
    if not isinstance(headers, dict):
        raise ApiError('headers must be a JSON object, like {"region": "eu"}', field="headers")
    return headers


@json_api(query=("vhost",))
def api_topology(request: HttpRequest) -> HttpResponse:
    snapshot = runtime().topology_cache.snapshot(_api_vhost(request))
    # Refreshed every few seconds by each open graph: an unchanged topology costs the
    # browser a 304 instead of parsing and diffing the whole vhost again.
    if snapshot.etag in request.headers.get("If-None-Match", ""):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(snapshot.json_body, content_type="application/json")
    response["ETag"] = snapshot.etag
    response["Cache-Control"] = "private, no-cache"
    return response


@json_api(query=("vhost", "exchange", "routing_key", "headers"))
def api_route(request: HttpRequest) -> dict[str, Any]:
    vhost = _api_vhost(request)
    # The empty name is the default exchange, so only a missing parameter is an error.
    exchange = required_param(request, "exchange", allow_empty=True)
    routing_key = request.GET.get("routing_key", "")
    headers = parse_headers_param(request.GET.get("headers"))
    topology = runtime().topology_cache.topology(vhost)
    prediction = predict(topology, exchange=exchange, routing_key=routing_key, headers=headers)
    refusal = prediction.refusal
    if isinstance(refusal, UnknownExchange):
        raise ApiError(refusal.message, status=404, field="exchange") from refusal
    if refusal is not None:
        raise ApiError(refusal.message, field=refusal.field) from refusal
    return prediction.to_json()


def _publish_url() -> str:
    """The publish page (another part of the dashboard); its conventional path until it exists."""
    try:
        return reverse("publish")
    except NoReverseMatch:
        return "/publish/"


@require_GET
def topology_page(request: HttpRequest) -> HttpResponse:
    vhost = selected_vhost(request)
    error: str | None = None
    try:
        # The page draws from the API; one cheap question here lets it say plainly, on
        # first paint, that the vhost is missing or the broker is down.
        runtime().management_client.vhost(vhost)
    except BrokerNotFound:
        error = f"No vhost named {json.dumps(vhost, ensure_ascii=False)} on the broker."
    except BrokerError as exc:
        error = exc.message
    context = {
        "vhost": vhost,
        "topology_error": error,
        "graph_config": {
            "vhost": vhost,
            "apiUrl": reverse("api-topology"),
            "routeUrl": reverse("api-route"),
            "publishUrl": _publish_url(),
            "nodeLimit": GRAPH_NODE_LIMIT,
            "defaultExchangeNote": DEFAULT_EXCHANGE_NOTE,
        },
    }
    return render(request, "flows/topology.html", context, status=200)


__all__ = ["api_route", "api_topology", "parse_headers_param", "topology_page"]
