"""The scenario pages: `/demo/` (load and unload the talk's scenarios) and `/demo/<name>/`.

A scenario page is the live view of the scenario's vhost, graph large and feed beside it,
watched with the firehose where the viewer may switch it on (loading a scenario is the
explicit choice), with the controls of its publishers and workers. Every change is an htmx
form posting to a small view here that calls `flows.demo.service`; each answers with the
part of the page it changed, and a refusal with its reason in that part.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from flows import audience
from flows.demo import service
from flows.demo.run import DemoRun, RunReport
from flows.demo.scenario import Scenario, ScenarioInvalid, UnknownScenario, load_scenario
from flows.tap.filters import EventFilter
from flows.tap.firehose import user_may_choose_firehose
from flows.tap.modes import DEFAULT_TAP_MODE, TapMode
from flows.views.live import live_view_context


def _scenario(name: str) -> Scenario:
    try:
        return load_scenario(name)
    except (UnknownScenario, ScenarioInvalid) as exc:
        raise Http404(str(exc)) from exc


def _vhost(request: HttpRequest, scenario: Scenario) -> str:
    return request.POST.get("vhost") or request.GET.get("vhost") or scenario.default_vhost()


# --- the list -----------------------------------------------------------------------------------


@require_GET
def demo_list(request: HttpRequest) -> HttpResponse:
    return render(request, "flows/demo/list.html", _list_context(request))


def _list_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {
        "entries": service.scenario_entries(),
        "refusal": service.refusal(request.user),
        **extra,
    }


@require_POST
def demo_load(request: HttpRequest, name: str) -> HttpResponse:
    return _load_or_unload(request, name, service.load_for)


@require_POST
def demo_unload(request: HttpRequest, name: str) -> HttpResponse:
    return _load_or_unload(request, name, service.unload_for)


def _load_or_unload(request: HttpRequest, name: str, change: Any) -> HttpResponse:
    scenario = _scenario(name)
    vhost = _vhost(request, scenario)
    try:
        result = change(request.user, scenario, vhost=vhost)
    except service.DemoRefused as exc:
        message, error, status = "", exc.message, _status(exc)
    else:
        message, error, status = result.describe(), "", 200
    # htmx swaps the list in place; a plain form post goes back to its page, or gets the list.
    htmx = request.headers.get("HX-Request")
    back = request.POST.get("next", "")
    if not htmx and not error and url_has_allowed_host_and_scheme(back, None):
        return redirect(back)
    return render(
        request,
        "flows/demo/_scenarios.html" if htmx else "flows/demo/list.html",
        _list_context(request, message=message, error=error, error_scenario=name),
        status=_shown(request, status),
    )


def _shown(request: HttpRequest, status: int) -> int:
    # htmx swaps only 2xx answers: the refusal is shown in place, its status for other clients.
    return 200 if request.headers.get("HX-Request") else status


def _status(exc: service.DemoRefused) -> int:
    return 403 if exc.forbidden else 409


# --- a scenario ---------------------------------------------------------------------------------


@require_GET
def demo_page(request: HttpRequest, name: str) -> HttpResponse:
    scenario = _scenario(name)
    vhost = _vhost(request, scenario)
    loaded = service.loaded_record(scenario, vhost) is not None
    mode: TapMode = (
        "firehose" if user_may_choose_firehose(request.user, vhost) else DEFAULT_TAP_MODE
    )
    context: dict[str, Any] = {
        "scenario": scenario,
        "loaded": loaded,
        "firehose": mode == "firehose",
        "graph_open": True,
        "live_title": scenario.title,
        **_controls_context(request, scenario, vhost),
        **_audience_context(request, scenario, vhost),
    }
    if loaded:
        context.update(
            live_view_context(
                vhost, event_filter=EventFilter(), mode=mode, firehose_offer=mode == "firehose"
            )
        )
    else:
        context["vhost"] = vhost
    return render(request, "flows/demo/scenario.html", context)


def _controls_context(
    request: HttpRequest, scenario: Scenario, vhost: str, **extra: Any
) -> dict[str, Any]:
    run = service.demo_runs().get(scenario.name, vhost)
    report = run.report() if run else None
    return {
        "scenario": scenario,
        "demo_vhost": vhost,
        "run": run,
        "run_errors": report.errors if report else {},
        "publishers": _publishers(scenario, run, report),
        "workers": _workers(scenario, run),
        "refusal": service.refusal(request.user),
        **extra,
    }


def _publishers(
    scenario: Scenario, run: DemoRun | None, report: RunReport | None
) -> list[dict[str, Any]]:
    return [
        {
            "name": spec.name,
            "exchange": spec.exchange,
            "keys": sorted({m.routing_key for m in spec.messages}),
            "rate": run.rates[spec.name] if run else spec.rate,
            "running": bool(run and spec.name in run.publishers),
            "counts": report.publishers.get(spec.name) if report else None,
        }
        for spec in scenario.publishers
    ]


def _workers(scenario: Scenario, run: DemoRun | None) -> list[dict[str, Any]]:
    rows = []
    for spec in scenario.workers:
        group = run.groups[spec.name] if run else None
        rows.append(
            {
                "name": spec.name,
                "queue": spec.queue,
                "count": group.count if group else spec.count,
                "prefetch": group.settings.prefetch if group else spec.prefetch,
                "failure_rate": group.settings.failure_rate if group else spec.failure_rate,
                "tallies": {n: t.counts() for n, t in group.tallies.items()} if group else {},
            }
        )
    return rows


def _controls(
    request: HttpRequest, scenario: Scenario, vhost: str, *, error: str = "", status: int = 200
) -> HttpResponse:
    return render(
        request,
        "flows/demo/_controls.html",
        _controls_context(request, scenario, vhost, error=error),
        status=_shown(request, status),
    )


@require_GET
def demo_controls(request: HttpRequest, name: str) -> HttpResponse:
    """The controls; with `counts=1` only their counters, polled while the scenario runs."""
    scenario = _scenario(name)
    vhost = _vhost(request, scenario)
    if request.GET.get("counts"):
        context = _controls_context(request, scenario, vhost)
        return render(request, "flows/demo/_counts.html", context)
    return _controls(request, scenario, vhost)


@require_POST
def demo_run(request: HttpRequest, name: str) -> HttpResponse:
    """`action=start` starts the scenario's workers, then its publishers; `stop` stops all."""
    scenario = _scenario(name)
    vhost = _vhost(request, scenario)
    action = request.POST.get("action")
    change = {"start": service.start_for, "stop": service.stop_for}.get(action or "")
    if change is None:
        return _controls(request, scenario, vhost, error="Start or stop?", status=400)
    return _changing(request, scenario, vhost, lambda: change(request.user, scenario, vhost=vhost))


@require_POST
def demo_publisher(request: HttpRequest, name: str) -> HttpResponse:
    """One publisher: `action` start, stop or set, and its `rate` (messages per second)."""
    return _change_settings(
        request,
        name,
        {"rate": float},
        lambda scenario, vhost, numbers: service.change_publisher(
            request.user,
            scenario,
            vhost=vhost,
            name=request.POST.get("publisher", ""),
            action=request.POST.get("action", "set"),
            **numbers,
        ),
    )


@require_POST
def demo_workers(request: HttpRequest, name: str) -> HttpResponse:
    """One worker group: its `count`, `prefetch` and `failure_rate` (0 to 1)."""
    return _change_settings(
        request,
        name,
        {"count": int, "prefetch": int, "failure_rate": float},
        lambda scenario, vhost, numbers: service.change_workers(
            request.user, scenario, vhost=vhost, name=request.POST.get("worker", ""), **numbers
        ),
    )


def _change_settings(
    request: HttpRequest,
    name: str,
    fields: dict[str, type[int] | type[float]],
    change: Callable[[Scenario, str, dict[str, Any]], None],
) -> HttpResponse:
    """Read the numeric `fields` (blank: unchanged), then `change(scenario, vhost, numbers)`."""
    scenario = _scenario(name)
    vhost = _vhost(request, scenario)
    try:
        numbers = {field: _number(request, field, kind) for field, kind in fields.items()}
    except ValueError as exc:
        return _controls(request, scenario, vhost, error=str(exc), status=400)
    return _changing(request, scenario, vhost, lambda: change(scenario, vhost, numbers))


def _number(request: HttpRequest, field: str, kind: type[int] | type[float]) -> Any:
    raw = request.POST.get(field, "").strip()
    if raw == "":
        return None
    try:
        return kind(raw)
    except ValueError:
        noun = "whole number" if kind is int else "number"
        raise ValueError(f"{field.replace('_', ' ')}: {raw!r} is not a {noun}") from None


def _changing(request: HttpRequest, scenario: Scenario, vhost: str, change: Any) -> HttpResponse:
    try:
        change()
    except service.DemoRefused as exc:
        return _controls(request, scenario, vhost, error=exc.message, status=_status(exc))
    return _controls(request, scenario, vhost)


# --- audience links (`flows.audience`) ----------------------------------------------------------


def _audience_context(
    request: HttpRequest, scenario: Scenario, vhost: str, **extra: Any
) -> dict[str, Any]:
    return {
        "audience_refusal": audience.refusal(request.user),
        "audience_links": audience.active_links(scenario=scenario.name, vhost=vhost),
        "audience_lifetimes": audience.LIFETIMES.values(),
        "audience_default_lifetime": audience.DEFAULT_LIFETIME,
        **extra,
    }


def _audience_panel(
    request: HttpRequest, scenario: Scenario, vhost: str, *, status: int = 200, **extra: Any
) -> HttpResponse:
    context = {
        "scenario": scenario,
        "demo_vhost": vhost,
        **_audience_context(request, scenario, vhost, **extra),
    }
    return render(request, "flows/demo/_audience.html", context, status=_shown(request, status))


def _audience_status(exc: audience.AudienceRefused) -> int:
    return 403 if exc.forbidden else 400


@require_POST
def demo_audience(request: HttpRequest, name: str) -> HttpResponse:
    """Create an audience link (`lifetime`: 1h, 4h or 24h); its URL is shown this once."""
    scenario = _scenario(name)
    vhost = _vhost(request, scenario)
    lifetime = request.POST.get("lifetime") or audience.DEFAULT_LIFETIME
    try:
        created = audience.create_link(
            request.user, scenario=scenario.name, vhost=vhost, lifetime=lifetime
        )
    except audience.AudienceRefused as exc:
        return _audience_panel(
            request, scenario, vhost, audience_error=exc.message, status=_audience_status(exc)
        )
    url = request.build_absolute_uri(reverse("watch", args=[created.token]))
    return _audience_panel(
        request, scenario, vhost, audience_created=created.link, audience_created_url=url
    )


@require_POST
def demo_audience_revoke(request: HttpRequest, name: str, link_id: int) -> HttpResponse:
    scenario = _scenario(name)
    vhost = _vhost(request, scenario)
    try:
        audience.revoke_link(request.user, link_id=link_id, scenario=scenario.name, vhost=vhost)
    except audience.AudienceRefused as exc:
        return _audience_panel(
            request, scenario, vhost, audience_error=exc.message, status=_audience_status(exc)
        )
    return _audience_panel(request, scenario, vhost, audience_revoked=True)
