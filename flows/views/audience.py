"""The audience's page, `/watch/<token>/`, and the topology its graph polls.

No sign-in: the token in the URL is the credential (`flows.audience`), and both views answer
only for the link's vhost. The page is the live view of `flows/live/_live.html` in its
read-only variant (`audience`): the graph above the feed on a phone, beside it on a screen; no
filters, details, consumption panel, firehose offer, navigation or vhost selector. A link
that does not work gets a page saying why (404 unknown, 410 expired or revoked), never the
sign-in page.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from flows import audience
from flows.demo.scenario import ScenarioInvalid, UnknownScenario, load_scenario
from flows.demo.service import loaded_record
from flows.models import AudienceLink
from flows.tap.filters import EventFilter
from flows.tap.modes import DEFAULT_TAP_MODE
from flows.views.json_api import ApiError, json_api
from flows.views.live import live_view_context, live_ws_path
from flows.views.topology import topology_response
from flows.websockets.query import AUDIENCE_PARAM


def _no_trace(response: HttpResponse) -> HttpResponse:
    # The token is in the URL: never sent on as a Referer, never kept by a shared cache.
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


def _ended(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    return _no_trace(
        render(request, "flows/audience/ended.html", {"message": message}, status=status)
    )


@login_not_required
@require_GET
def watch_page(request: HttpRequest, token: str) -> HttpResponse:
    link = audience.find_link(token)
    problem = audience.why_not_active(link)
    if link is None or problem is not None:
        return _ended(request, problem or audience.UNKNOWN, status=404 if link is None else 410)
    try:
        scenario = load_scenario(link.scenario)
    except (UnknownScenario, ScenarioInvalid):
        return _ended(request, f"The scenario {link.scenario!r} is gone.", status=404)
    if loaded_record(scenario, link.vhost) is None:
        return _ended(
            request,
            f"{scenario.title} is not loaded at the moment: this link works again once the "
            "speaker loads it.",
            status=404,
        )
    context = live_view_context(link.vhost, event_filter=EventFilter(), mode=DEFAULT_TAP_MODE)
    context.update(
        {
            "scenario": scenario,
            "link": link,
            "audience": True,
            "graph_open": True,
            "live_title": scenario.title,
            "ws_path": _ws_path(link, token),
            "graph_api_url": reverse("watch-topology", args=[token]),
        }
    )
    return _no_trace(render(request, "flows/audience/watch.html", context))


def _ws_path(link: AudienceLink, token: str) -> str:
    return f"{live_ws_path(link.vhost, EventFilter())}&{urlencode({AUDIENCE_PARAM: token})}"


@json_api(query=("vhost",), signed_in=False)
def watch_topology(request: HttpRequest, token: str) -> HttpResponse:
    """`/api/topology`'s answer for the link's vhost, and for no other."""
    link = audience.find_link(token)
    problem = audience.why_not_active(link)
    if link is None or problem is not None:
        raise ApiError(problem or audience.UNKNOWN, status=404 if link is None else 410)
    requested = request.GET.get("vhost")
    if requested and requested != link.vhost:
        raise ApiError(
            f"This audience link shows vhost {link.vhost!r} only", status=403, field="vhost"
        )
    return _no_trace(topology_response(request, link.vhost))
