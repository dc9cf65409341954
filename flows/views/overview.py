from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from flows.broker_status import broker_status


@require_GET
def overview_page(request: HttpRequest) -> HttpResponse:
    return render(request, "flows/overview.html", {"status": broker_status()})


@require_GET
def overview_status(request: HttpRequest) -> HttpResponse:
    """The status panel alone, polled by the page every few seconds."""
    return render(request, "flows/_broker_status.html", {"status": broker_status()})
