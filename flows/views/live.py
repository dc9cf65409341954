"""The live page (`/live/`), its message details and its consumption panel.

The page itself is static HTML: rows, counters and the tap status arrive over the
websocket (`flows.websockets.live`). Filters live in the URL, so a link reproduces a view.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST

from flows.access import Action
from flows.broker.errors import BrokerError
from flows.live.consumption import consumption
from flows.live.rows import build_details
from flows.publishing import publisher, service
from flows.publishing.again import NotRepublishable, publish_fields, why_not
from flows.publishing.fields import PublishInvalid
from flows.publishing.policy import PublishForbidden, permission_refusal
from flows.tap.filters import EventFilter, FilterError
from flows.tap.firehose import user_may_choose_firehose
from flows.tap.modes import DEFAULT_TAP_MODE, TAP_MODES, TapMode
from flows.views.access import page_vhost, requires
from flows.websockets.query import parse_tap_mode

FILTER_FIELDS = (
    ("exchange", "exchange", "name, or amq.default"),
    ("routing_key", "routing key", "topic pattern: food.*, #.error"),
    ("queue", "queue", "routed to or delivered from"),
    ("header", "header", "key=value"),
    ("body", "body contains", "text"),
    ("kind", "kind", ""),
    ("unroutable", "unroutable only", ""),
)
WS_PATH = "/ws/live/"
# Details are rendered from the event the row carries; an event is a few KiB at most.
MAX_DETAILS_REQUEST = 1024 * 1024


def live_ws_path(vhost: str, event_filter: EventFilter, mode: TapMode = DEFAULT_TAP_MODE) -> str:
    params = {"vhost": vhost, **event_filter.to_params()}
    if mode != DEFAULT_TAP_MODE:
        params["mode"] = mode
    return f"{WS_PATH}?{urlencode(params)}"


@require_GET
@requires(Action.VIEW)
def live_page(request: HttpRequest) -> HttpResponse:
    vhost = page_vhost(request)
    filter_error: FilterError | None = None
    mode: TapMode = DEFAULT_TAP_MODE
    try:
        mode = parse_tap_mode(request.GET.get("mode"))
        event_filter = EventFilter.from_params(request.GET)
    except FilterError as exc:
        filter_error = exc
        event_filter = EventFilter()
    return render(
        request,
        "flows/live.html",
        live_view_context(
            vhost,
            event_filter=event_filter,
            mode=mode,
            params=request.GET,
            error=filter_error,
            firehose_offer=user_may_choose_firehose(request.user, vhost),
        ),
        status=400 if filter_error else 200,
    )


def live_view_context(
    vhost: str,
    *,
    event_filter: EventFilter,
    mode: TapMode,
    params: Mapping[str, str] | None = None,
    error: FilterError | None = None,
    firehose_offer: bool = False,
) -> dict[str, Any]:
    """What `flows/live/_live.html` needs: the live page's, and a scenario page's.

    `firehose_offer`: the viewer may switch the firehose on, so the bindings-mode notice
    offers it as one button."""
    fields = [
        {
            "name": name,
            "label": label,
            "placeholder": placeholder,
            "value": (params or {}).get(name, ""),
        }
        for name, label, placeholder in FILTER_FIELDS
    ]
    return {
        "vhost": vhost,
        "filter_fields": fields,
        "filter_error": error,
        "ws_path": live_ws_path(vhost, event_filter, mode),
        "mode": mode,
        "tap_modes": TAP_MODES,
        "max_rows": settings.LIVE_MAX_ROWS,
        "graph_api_url": graph_api_url(vhost),
        "firehose_offer": firehose_offer,
    }


def graph_api_url(vhost: str) -> str:
    """Where the topology graph reads its data (graph.js adds `?vhost=` itself)."""
    try:
        return reverse("api-topology")
    except NoReverseMatch:  # the topology page is optional for the live page
        return ""


def posted_event(request: HttpRequest) -> tuple[str, dict[str, Any] | None, str]:
    """(the posted text, the event, an error for the person) of a row's event posted back.

    The details panel, "Publish again" and "Edit and publish" all take the event the row
    carries (`event`), as the page got it from the tap.
    """
    raw = request.POST.get("event", "")
    if len(raw) > MAX_DETAILS_REQUEST:
        return raw, None, "This message is too large to show."
    try:
        event = json.loads(raw)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        return raw, None, "This row carries no readable message."
    return raw, event, ""


@require_POST
@requires(Action.VIEW)
def live_details(request: HttpRequest) -> HttpResponse:
    """The details panel for one row: the page posts back the event the row carries."""
    raw, event, error = posted_event(request)
    details = build_details(event) if event is not None else None
    return render(
        request,
        "flows/live/_details.html",
        {
            "d": details,
            "error": error,
            "event_json": raw,
            "republish_refusal": permission_refusal(request.user),
            "republish_blocker": why_not(event) if event is not None else None,
        },
    )


@require_POST
@requires(Action.PUBLISH)
def live_publish_again(request: HttpRequest) -> HttpResponse:
    """ "Publish again" from the details panel: the captured message, exactly, through the
    publishing service (the publisher permission, the allow-list, confirms, mandatory)."""
    _, event, error = posted_event(request)
    result: service.PublishResult | None = None
    if event is not None:
        try:
            fields = publish_fields(event)
            result = service.publish_message(request.user, fields, generate_message_id=False)
        except NotRepublishable as exc:
            error = str(exc)
        except PublishInvalid as exc:
            error = "This message cannot be published as it was: " + "; ".join(
                f"{name}: {message}" for name, message in exc.errors.items()
            )
        except (PublishForbidden, publisher.PublishFailed) as exc:
            error = exc.message
    return render(
        request,
        "flows/_publish_result.html",
        {"result": result, "error": error, "run": None},
    )


@require_GET
@requires(Action.VIEW)
def live_consumption(request: HttpRequest) -> HttpResponse:
    """The consumption panel, polled by the live page every few seconds."""
    vhost = page_vhost(request)
    try:
        panels, consumers, hidden = consumption(vhost)
    except BrokerError as exc:
        return render(request, "flows/live/_consumption.html", {"error": str(exc)})
    return render(
        request,
        "flows/live/_consumption.html",
        {"panels": panels, "consumers": consumers, "hidden": hidden},
    )
