"""The audit log for admins: `/audit/` (filtered, paged) and `GET /api/audit`.

Both read `flows.audit.entries()`; both take the `view_audit` action (the admin role).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.http import require_GET

from flows import audit
from flows.access import Action
from flows.views.access import requires
from flows.views.json_api import ApiError, json_api

PAGE_SIZE = 50
API_DEFAULT_LIMIT = 100
API_MAX_LIMIT = 1000
FILTERS = ("user", "action", "vhost")


def parse_since(raw: str | None) -> dt.datetime | None:
    """An ISO 8601 date or date-time (naive: UTC); None when absent. Raises ValueError."""
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip()
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            if day is None:
                raise ValueError
            moment = dt.datetime.combine(day, dt.time())
    except ValueError:
        raise ValueError(
            f"{raw!r} is not an ISO 8601 date or time, like 2026-05-01T12:00:00Z"
        ) from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return moment


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return API_DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= API_MAX_LIMIT:
        raise ValueError(f"must be a whole number from 1 to {API_MAX_LIMIT}, got {raw!r}")
    return int(raw)


@require_GET
@requires(Action.VIEW_AUDIT)
def audit_page(request: HttpRequest) -> HttpResponse:
    filters = {name: request.GET.get(name, "").strip() for name in FILTERS}
    found = audit.entries(user=filters["user"], action=filters["action"], vhost=filters["vhost"])
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    query = urlencode({name: value for name, value in filters.items() if value})
    return render(
        request,
        "flows/audit.html",
        {
            "page": page,
            "filters": filters,
            "query": query,
            "actions": audit.ACTIONS,
            "retention_days": audit.retention().days,
        },
    )


@json_api(query=("user", "action", "vhost", "since", "limit"), action=Action.VIEW_AUDIT)
def api_audit(request: HttpRequest) -> dict[str, Any]:
    errors: dict[str, str] = {}
    since = limit = None
    try:
        since = parse_since(request.GET.get("since"))
    except ValueError as exc:
        errors["since"] = str(exc)
    try:
        limit = parse_limit(request.GET.get("limit"))
    except ValueError as exc:
        errors["limit"] = str(exc)
    if errors or limit is None:
        raise ApiError("Some query parameters are not valid", fields=errors)
    found = audit.entries(
        user=request.GET.get("user", ""),
        action=request.GET.get("action", ""),
        vhost=request.GET.get("vhost", ""),
        since=since,
    )[:limit]
    return {"entries": [audit.to_json(entry) for entry in found]}
