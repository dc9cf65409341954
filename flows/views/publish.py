"""The publish page: the form (htmx, result inline), repeat progress, saved templates.

Every view calls `flows.publishing.service`; none talks to the broker itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from flows.access import Action
from flows.broker.errors import BrokerError
from flows.models import PublishTemplate
from flows.publishing import publisher, service
from flows.publishing.again import publish_fields, why_not
from flows.publishing.fields import (
    BODY_ENCODINGS,
    HEADER_TYPES,
    PublishInvalid,
    form_to_raw,
    parse_publish_request,
)
from flows.publishing.policy import PublishForbidden, permission_refusal
from flows.publishing.runs import RunStatus
from flows.runtime import runtime
from flows.shared_store import SharedStoreDown
from flows.views.access import page_vhost, requires

# Fields that belong to the page, not to the message.
FORM_ONLY_FIELDS = ("csrfmiddlewaretoken", "idempotency_key", "template_name", "template_shared")
EMPTY_HEADER_ROWS = 2


class HtmxHttpRequest(HttpRequest):
    """A request that went through `HtmxMiddleware`, which sets `request.htmx` at run time."""

    htmx: HtmxDetails


def _header_rows(raw: dict[str, Any], errors: dict[str, str]) -> list[dict[str, Any]]:
    """The submitted header rows with their errors (keyed by submitted index), plus blanks."""
    rows = []
    for index, row in enumerate(raw.get("headers") or []):
        if not isinstance(row, dict):
            continue
        row = {
            **row,
            "name_error": errors.get(f"headers.{index}.name"),
            "value_error": errors.get(f"headers.{index}.value"),
        }
        if row.get("name") or row.get("value") not in (None, "") or row["name_error"]:
            rows.append(row)
    return rows + [{"name": "", "type": "string", "value": ""}] * EMPTY_HEADER_ROWS


def _suggestions(vhost: str) -> dict[str, list[str]]:
    """Exchange names and routing keys from the vhost's topology, for the datalists.

    From the shared snapshot, as the prediction is, and like it without the dashboard's own
    objects: a tap's queue and catch-all keys are nothing to publish to.
    """
    try:
        topology = runtime().topology_cache.topology(vhost).without_dashboard_objects
    except BrokerError:
        return {"exchanges": [], "routing_keys": []}
    exchanges = [e.name for e in topology.exchanges if e.name]
    keys = {b.routing_key for b in topology.bindings if b.routing_key}
    keys.update(q.name for q in topology.queues)
    return {"exchanges": exchanges, "routing_keys": sorted(keys)[:500]}


def _templates_for(user: AbstractBaseUser | AnonymousUser) -> list[PublishTemplate]:
    return list(
        PublishTemplate.objects.filter(Q(owner=user) | Q(shared=True)).select_related("owner")
    )


def _context(
    request: HttpRequest,
    raw: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    result: service.PublishResult | None = None,
    suggest: bool = False,
) -> dict[str, Any]:
    vhost = raw.get("vhost") or page_vhost(request)
    errors = errors or {}
    rows = _header_rows(raw, errors)
    return {
        "raw": {**raw, "vhost": vhost},
        "header_rows": rows,
        "header_types": HEADER_TYPES,
        "body_encodings": BODY_ENCODINGS,
        "errors": errors,
        "error": error,
        "result": result,
        "run": result.run if result else None,
        "mandatory": raw.get("mandatory", "true") not in ("false", False),
        "refusal": permission_refusal(request.user, vhost),
        "allowed_patterns": service.allowed_exchange_patterns(),
        "max_body_bytes": service.max_body_bytes(),
        "idempotency_key": uuid.uuid4().hex,
        "suggestions": _suggestions(vhost) if request.method == "GET" or suggest else None,
        "templates": _templates_for(request.user),
    }


def _initial_raw(request: HttpRequest) -> dict[str, Any]:
    template_id = request.GET.get("template")
    if template_id and template_id.isdigit():
        template = PublishTemplate.objects.filter(
            Q(owner=request.user) | Q(shared=True), pk=int(template_id)
        ).first()
        if template is not None:
            return dict(template.fields)
    return {
        "vhost": page_vhost(request),
        "exchange": request.GET.get("exchange", ""),
        "routing_key": request.GET.get("routing_key", ""),
        "body_encoding": "text",
        "mandatory": "true",
    }


@require_GET
@requires(Action.VIEW)
def publish_page(request: HttpRequest) -> HttpResponse:
    return render(request, "flows/publish.html", _context(request, _initial_raw(request)))


@require_POST
@requires(Action.VIEW)
def publish_prefill(request: HttpRequest) -> HttpResponse:
    """ "Edit and publish": the publish page with every field of a captured message filled in
    (the live page posts the row's event: too large for a query string)."""
    from flows.views.live import posted_event

    _, event, error = posted_event(request)
    if event is None:
        raw = _initial_raw(request)
        return render(request, "flows/publish.html", _context(request, raw, error=error))
    raw = publish_fields(event, for_the_form=True)
    return render(
        request,
        "flows/publish.html",
        _context(request, raw, error=why_not(event), suggest=True),
    )


def message_fields(data: QueryDict) -> dict[str, Any]:
    """A submitted publish form's message fields (the page's own fields left out)."""
    raw = form_to_raw(data)
    for name in FORM_ONLY_FIELDS:
        raw.pop(name, None)
    raw.pop("mandatory_present", None)
    return raw


@dataclass(frozen=True)
class FormPublish:
    """What publishing a submitted form came to: a result, or what to show where."""

    result: service.PublishResult | None = None
    errors: dict[str, str] = field(default_factory=dict)  # by field name
    error: str | None = None  # for the form as a whole
    status: int = 200


def publish_form(request: HttpRequest, raw: dict[str, Any]) -> FormPublish:
    """Publish a form's `raw` fields as `request.user`: the publish page's and a scenario
    page's composer's one way. A JSON body in `raw` is replaced by its pretty-printed text."""
    try:
        result = service.publish_message(
            request.user, raw, idempotency_key=request.POST.get("idempotency_key")
        )
    except PublishInvalid as exc:
        return FormPublish(errors=exc.errors, status=400)
    except PublishForbidden as exc:
        if exc.field:
            return FormPublish(errors={exc.field: exc.message}, status=403)
        return FormPublish(error=exc.message, status=403)
    except publisher.PublishFailed as exc:
        return FormPublish(
            errors={exc.field: exc.message} if exc.field else {},
            error=exc.message,
            status=502 if exc.kind != "channel" else 400,
        )
    if result.request.body_encoding == "json":
        raw["body"] = result.request.body_display  # pretty-printed
    return FormPublish(result=result)


@require_POST
@requires(Action.PUBLISH)
def publish_submit(request: HtmxHttpRequest) -> HttpResponse:
    """Publish from the form; htmx swaps in the form (errors, fresh token) and the result."""
    raw = message_fields(request.POST)
    done = publish_form(request, raw)
    context = _context(request, raw, errors=done.errors, error=done.error, result=done.result)
    template = "flows/_publish_panel.html" if request.htmx else "flows/publish.html"
    # htmx swaps only 2xx responses by default: field errors are a normal answer here.
    return render(request, template, context, status=200 if request.htmx else done.status)


# --- repeat runs --------------------------------------------------------------------------------


def _progress(
    request: HttpRequest, run_id: str, find: Callable[[], RunStatus | None]
) -> HttpResponse:
    try:
        run = find()
    except SharedStoreDown as exc:
        # In place of the progress, still polling: the run comes back when the store does.
        # 200 for htmx, which swaps nothing else.
        context = {"run_id": run_id, "error": exc.message}
        status = 200 if getattr(request, "htmx", False) else 503
        return render(request, "flows/_publish_progress_unavailable.html", context, status=status)
    if run is None:
        raise Http404("No such repeat run")
    return render(request, "flows/_publish_progress.html", {"run": run})


@require_GET
@requires(Action.VIEW)
def run_progress(request: HttpRequest, run_id: str) -> HttpResponse:
    return _progress(request, run_id, lambda: service.own_run(request.user, run_id))


@require_POST
@requires(Action.VIEW)
def run_cancel(request: HttpRequest, run_id: str) -> HttpResponse:
    return _progress(request, run_id, lambda: service.cancel_own_run(request.user, run_id))


# --- templates ----------------------------------------------------------------------------------


def _templates_fragment(request: HttpRequest, **extra: Any) -> HttpResponse:
    return render(
        request,
        "flows/_publish_templates.html",
        {"templates": _templates_for(request.user), **extra},
    )


@require_POST
@requires(Action.PUBLISH)
def template_save(request: HttpRequest) -> HttpResponse:
    """Save the form's message under a name (replacing the user's template of that name)."""
    name = (request.POST.get("template_name") or "").strip()
    refusal = permission_refusal(request.user)
    if refusal:
        return _templates_fragment(request, template_error=refusal)
    if not name:
        return _templates_fragment(request, template_error="Give the template a name.")
    if len(name) > 100:
        return _templates_fragment(request, template_error="At most 100 characters, please.")
    raw = message_fields(request.POST)
    try:
        parse_publish_request(raw, max_body_bytes=service.max_body_bytes())
    except PublishInvalid as exc:
        problems = "; ".join(f"{field}: {message}" for field, message in exc.errors.items())
        return _templates_fragment(
            request, template_error=f"Not saved, the message has errors: {problems}"
        )
    PublishTemplate.objects.update_or_create(
        owner=request.user,
        name=name,
        defaults={"fields": raw, "shared": bool(request.POST.get("template_shared"))},
    )
    return _templates_fragment(request, template_saved=name)


@require_POST
@requires(Action.PUBLISH)
def template_publish(request: HttpRequest, template_id: int) -> HttpResponse:
    """Publish a saved template as it stands, in one click."""
    template = get_object_or_404(
        PublishTemplate.objects.filter(Q(owner=request.user) | Q(shared=True)), pk=template_id
    )
    raw = dict(template.fields)
    error: str | None = None
    result = None
    try:
        result = service.publish_message(request.user, raw)
    except PublishInvalid as exc:
        error = "The template no longer checks out: " + "; ".join(
            f"{field}: {message}" for field, message in exc.errors.items()
        )
    except (PublishForbidden, publisher.PublishFailed) as exc:
        error = exc.message
    return render(
        request,
        "flows/_publish_result.html",
        {"result": result, "error": error, "run": result.run if result else None},
    )


@require_POST
@requires(Action.VIEW)
def template_delete(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(PublishTemplate, pk=template_id)
    if template.owner_id != request.user.pk and not request.user.is_superuser:
        return _templates_fragment(request, template_error="Only its owner can delete a template.")
    template.delete()
    return _templates_fragment(request)
