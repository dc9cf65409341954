"""The topology page, its panels and its JSON API.

- `/topology/`: the page; the graph draws itself from `/api/topology` (static/flows/graph.js).
- `/topology/details` and `/topology/route`: the details panel and the dry-run's answer as
  HTML fragments for htmx. A refusal (bad input, an unknown vhost, exchange or node, the
  broker down) is a fragment too, with the status `/api/*` would answer and the message to
  show beside the field to blame.
- `/api/topology` and `/api/route`: the same reads for programs (`@json_api`).

The panels' content comes from `flows.topology.panels` and the one `Prediction`; the views
only read the request and pick the template.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from flows import access
from flows.access import Action
from flows.broker.errors import BrokerError, BrokerNotFound
from flows.routing_rules.dry_run import UnknownExchange
from flows.routing_rules.prediction import Prediction, predict
from flows.runtime import runtime
from flows.topology.panels import REQUESTABLE_KINDS, NodeDetails, node_details, route_panel
from flows.topology.shapes import DEFAULT_EXCHANGE_NOTE
from flows.vhosts import SESSION_KEY, default_vhost
from flows.views.access import page_vhost, requires
from flows.views.json_api import ApiError, broker_error_status, json_api, required_param

# Above this many objects the page asks the user to search or focus instead of drawing
# everything: a layered layout of thousands of nodes is neither fast nor readable.
GRAPH_NODE_LIMIT = 300


def _api_vhost(request: HttpRequest) -> str:
    """`?vhost=`, else the page's selected vhost. The API never changes the selection.

    Raises `AccessDenied` for a vhost outside the user's limits.
    """
    vhost = request.GET.get("vhost") or request.session.get(SESSION_KEY)
    if not vhost:
        vhost = default_vhost(request.user)
    access.require(request.user, Action.VIEW, vhost)
    return vhost


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
    return topology_response(request, _api_vhost(request))


def topology_response(request: HttpRequest, vhost: str) -> HttpResponse:
    """`/api/topology`'s answer for `vhost` (the audience's `/watch/<token>/topology` too)."""
    snapshot = runtime().topology_cache.snapshot(vhost)
    # Refreshed every few seconds by each open graph: an unchanged topology costs the
    # browser a 304 instead of parsing and diffing the whole vhost again.
    if snapshot.etag in request.headers.get("If-None-Match", ""):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(snapshot.json_body, content_type="application/json")
    response["ETag"] = snapshot.etag
    response["Cache-Control"] = "private, no-cache"
    return response


def _dry_run(request: HttpRequest) -> Prediction:
    """The prediction a request asks for.

    Raises ApiError for bad input or a publish the broker would refuse (an unknown exchange
    is a 404), and the topology read's BrokerError.
    """
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
    return prediction


@json_api(query=("vhost", "exchange", "routing_key", "headers"))
def api_route(request: HttpRequest) -> dict[str, Any]:
    return _dry_run(request).to_json()


def _quoted(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def _node_details(request: HttpRequest) -> NodeDetails:
    """The node a request names (`kind`, `name`, and `channel` for a consumer).

    Raises ApiError for a bad kind or a node the vhost does not have (404), and the topology
    read's BrokerError.
    """
    vhost = _api_vhost(request)
    kind = request.GET.get("kind", "")
    name = request.GET.get("name", "")
    if kind not in REQUESTABLE_KINDS:
        raise ApiError(f"kind must be one of {', '.join(REQUESTABLE_KINDS)}", field="kind")
    topology = runtime().topology_cache.topology(vhost)
    details = node_details(topology, kind=kind, name=name, channel=request.GET.get("channel", ""))
    if details is None:
        raise ApiError(
            f"No {kind} named {_quoted(name)} in vhost {_quoted(vhost)}: "
            "it may have been deleted since the graph was drawn.",
            status=404,
        )
    return details


def _panel(
    request: HttpRequest, template: str, answer: Callable[[HttpRequest], dict[str, Any]]
) -> HttpResponse:
    """A panel's fragment: `answer`'s context, or why there is none, with the status the API
    would give (an ApiError's, or the broker error's)."""
    try:
        context = answer(request)
    except ApiError as exc:
        context, status = {"error": exc.message, "field_errors": exc.fields}, exc.status
    except BrokerError as exc:
        context, status = {"error": exc.message, "field_errors": {}}, broker_error_status(exc)
    else:
        status = 200
    return render(request, template, context, status=status)


def _details_answer(request: HttpRequest) -> dict[str, Any]:
    details = _node_details(request)
    vhost = _api_vhost(request)
    return {
        "details": details,
        "vhost": vhost,
        "publish_href": _publish_href(vhost, details.name),
        "default_exchange_note": DEFAULT_EXCHANGE_NOTE,
    }


def _route_answer(request: HttpRequest) -> dict[str, Any]:
    prediction = _dry_run(request)
    return {"prediction": prediction, "panel": route_panel(prediction), "field_errors": {}}


@require_GET
@requires(Action.VIEW)
def topology_details(request: HttpRequest) -> HttpResponse:
    """The details panel of one exchange, queue or consumer."""
    return _panel(request, "flows/topology/_details.html", _details_answer)


@require_GET
@requires(Action.VIEW)
def topology_route(request: HttpRequest) -> HttpResponse:
    """The dry-run's answer: where a message would go, drawn by the page on its graph."""
    return _panel(request, "flows/topology/_route.html", _route_answer)


def _publish_url() -> str:
    """The publish page (another part of the dashboard); its conventional path until it exists."""
    try:
        return reverse("publish")
    except NoReverseMatch:
        return "/publish/"


def _publish_href(vhost: str, exchange: str) -> str:
    """The publish page, opened on this vhost and exchange."""
    query = urlencode({"vhost": vhost, "exchange": exchange}, quote_via=quote)
    return f"{_publish_url()}?{query}"


@require_GET
@requires(Action.VIEW)
def topology_page(request: HttpRequest) -> HttpResponse:
    vhost = page_vhost(request)
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
        "default_exchange_note": DEFAULT_EXCHANGE_NOTE,
        "graph_config": {
            "vhost": vhost,
            "apiUrl": reverse("api-topology"),
            "detailsUrl": reverse("topology-details"),
            "nodeLimit": GRAPH_NODE_LIMIT,
        },
    }
    return render(request, "flows/topology.html", context, status=200)


__all__ = [
    "api_route",
    "api_topology",
    "parse_headers_param",
    "topology_details",
    "topology_page",
    "topology_route",
]
