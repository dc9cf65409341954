"""Recordings and following one message: start, stop, list and export recordings; the
timeline of one message from the recordings of a vhost (`/messages/`, `GET /api/messages`).

Starting is an async view: the recorder runs on the event loop the tap manager serves on
(`flows.recording.recorder`), which is the one this view is called on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from flows import access
from flows.access import Action
from flows.broker.errors import BrokerError
from flows.models import Recording
from flows.publishing.again import why_not
from flows.publishing.policy import permission_refusal
from flows.recording import store
from flows.recording.timeline import timeline
from flows.runtime import runtime
from flows.tap.filters import EventFilter, FilterError
from flows.vhosts import selected_vhost
from flows.views.access import page_vhost, refused_page, requires
from flows.views.json_api import ApiError, json_api

FOLLOW_PARAMS = ("vhost", "message_id", "correlation_id", "header", "body")


def _live_url(vhost: str) -> str:
    return f"{reverse('live')}?{urlencode({'vhost': vhost})}"


@require_POST
async def recording_start(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    vhost = request.POST.get("vhost") or await sync_to_async(selected_vhost)(request)
    refusal = await sync_to_async(access.refusal)(user, Action.RECORD, vhost)
    if refusal is not None:
        return await sync_to_async(refused_page)(request, refusal.message, status=refusal.status)
    try:
        hours, max_bytes = store.parse_bounds(request.POST.get("hours"), request.POST.get("max_mb"))
    except store.BoundsError as bad:
        await sync_to_async(messages.error)(request, f"Recording not started: {bad.message}")
        return HttpResponseRedirect(_live_url(vhost))
    recording = await sync_to_async(store.start)(
        vhost=vhost, user=user, hours=hours, max_bytes=max_bytes
    )
    runtime().recorders.start(recording.pk, vhost, user)
    await sync_to_async(messages.success)(
        request, f"Recording {vhost!r} (recording {recording.pk}) until {recording.ends_at:%c}."
    )
    return HttpResponseRedirect(_live_url(vhost))


recording_start.access_action = Action.RECORD  # type: ignore[attr-defined]  # checked above


@require_POST
@requires(Action.RECORD)
def recording_stop(request: HttpRequest, recording_id: int) -> HttpResponse:
    recording = get_object_or_404(Recording, pk=recording_id)
    access.require(request.user, Action.RECORD, recording.vhost)
    store.stop(recording.pk, user=request.user)
    messages.success(request, f"Recording {recording.pk} of {recording.vhost!r} stopped.")
    return HttpResponseRedirect(_live_url(recording.vhost))


@require_GET
@requires(Action.VIEW)
def recordings_page(request: HttpRequest) -> HttpResponse:
    vhost = page_vhost(request)
    found = Recording.objects.filter(vhost=vhost).select_related("started_by")[:100]
    return render(
        request,
        "flows/recordings.html",
        {"recordings": found, "can_record": access.can(request.user, Action.RECORD, vhost)},
    )


@require_GET
@requires(Action.VIEW)
def recording_export(request: HttpRequest, recording_id: int) -> StreamingHttpResponse:
    """The recording as JSON Lines: what `manage.py tail --json` prints and `replay` reads."""
    recording = get_object_or_404(Recording, pk=recording_id)
    access.require(request.user, Action.VIEW, recording.vhost)
    safe_vhost = re.sub(r"[^A-Za-z0-9_.-]+", "_", recording.vhost) or "vhost"
    response = StreamingHttpResponse(
        store.export_lines(recording), content_type="application/x-ndjson; charset=utf-8"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="recording-{recording.pk}-{safe_vhost}.jsonl"'
    )
    return response


# --- following one message ----------------------------------------------------------------------


def follow(vhost: str, *, message_id: str, correlation_id: str) -> dict[str, Any]:
    """The timeline of the message with that id (or correlation id) in `vhost`'s recordings."""
    events = store.events_of_message(vhost, message_id=message_id, correlation_id=correlation_id)
    topology = None
    if any(event.get("kind") == "publish" for event in events):
        try:  # only to name an alternate exchange that caught a publish
            topology = runtime().topology_cache.topology(vhost)
        except BrokerError:
            topology = None
    published = next((event for event in events if event.get("kind") == "publish"), None)
    return {
        "vhost": vhost,
        "message_id": message_id or None,
        "correlation_id": correlation_id or None,
        "events": len(events),
        # The message as it was published (masked already): what "Publish again" sends.
        "published_event": published,
        "timeline": timeline(events, topology=topology),
        "recordings": [store.to_json(r) for r in Recording.objects.filter(vhost=vhost)[:20]],
    }


def search(vhost: str, params: Mapping[str, str]) -> dict[str, Any] | None:
    """For `header=key=value` or `body=text`: the message ids of `vhost`'s recordings that
    match (`candidates`), and the timeline when exactly one does; None when neither is given.
    Raises FilterError for a malformed `header`."""
    wanted = {name: params[name] for name in ("header", "body") if params.get(name)}
    if not wanted:
        return None
    candidates, partial = store.messages_matching(vhost, EventFilter.from_params(wanted))
    answer: dict[str, Any] = {
        "vhost": vhost,
        "search": wanted,
        "candidates": candidates,
        "partial": partial,
    }
    if len(candidates) == 1:
        answer |= follow(vhost, message_id=candidates[0], correlation_id="")
    return answer


@json_api(query=FOLLOW_PARAMS)
def api_messages(request: HttpRequest) -> dict[str, Any]:
    vhost = request.GET.get("vhost", "")
    message_id = request.GET.get("message_id", "").strip()
    correlation_id = request.GET.get("correlation_id", "").strip()
    errors = {}
    if not vhost:
        errors["vhost"] = "The 'vhost' parameter is required"
    searching = bool(request.GET.get("header") or request.GET.get("body"))
    if not message_id and not correlation_id and not searching:
        errors["message_id"] = "Give a message_id, a correlation_id, a header or body text"
    if errors:
        raise ApiError("Some query parameters are not valid", fields=errors)
    access.require(request.user, Action.VIEW, vhost)
    if message_id or correlation_id:
        return follow(vhost, message_id=message_id, correlation_id=correlation_id)
    try:
        found = search(vhost, request.GET)
    except FilterError as exc:
        raise ApiError(exc.message, field=exc.field) from exc
    assert found is not None
    return found


@require_GET
@requires(Action.VIEW)
def messages_page(request: HttpRequest) -> HttpResponse:
    vhost = page_vhost(request, request.GET.get("vhost") or None)
    message_id = request.GET.get("message_id", "").strip()
    correlation_id = request.GET.get("correlation_id", "").strip()
    error = ""
    found = None
    if message_id or correlation_id:
        found = follow(vhost, message_id=message_id, correlation_id=correlation_id)
    else:
        try:
            found = search(vhost, request.GET)
        except FilterError as exc:
            error = exc.message
    published = (found or {}).get("published_event") if found else None
    return render(
        request,
        "flows/messages.html",
        {
            "published_json": json.dumps(published, ensure_ascii=False) if published else "",
            "republish_refusal": permission_refusal(request.user, vhost) if published else None,
            "republish_blocker": why_not(published) if published else None,
            "follow_vhost": vhost,
            "message_id": message_id,
            "correlation_id": correlation_id,
            "header": request.GET.get("header", ""),
            "body": request.GET.get("body", ""),
            "found": found,
            "error": error,
        },
    )
