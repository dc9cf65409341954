import dataclasses

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from flows import access
from flows.access import Action
from flows.broker_status import BrokerStatus, broker_status
from flows.views.access import requires


def _status_for(request: HttpRequest) -> BrokerStatus:
    """The broker's status, listing only the vhosts this user may see."""
    status = broker_status()
    vhosts = [vhost for vhost in status.vhosts if access.vhost_allowed(request.user, vhost.name)]
    return dataclasses.replace(status, vhosts=vhosts)


@require_GET
@requires(Action.VIEW)
def overview_page(request: HttpRequest) -> HttpResponse:
    return render(request, "flows/overview.html", {"status": _status_for(request)})


@require_GET
@requires(Action.VIEW)
def overview_status(request: HttpRequest) -> HttpResponse:
    """The status panel alone, polled by the page every few seconds."""
    return render(request, "flows/_broker_status.html", {"status": _status_for(request)})
