"""The dead-letters page (`/dead-letters/?vhost=&queue=`): a queue's dead-lettered messages
by reason and origin, and moves of them, as background jobs with progress and cancel.

Reading goes through `flows.dead_letters.reading` (a snapshot that gives every message
back), moving through `flows.dead_letters.moving` on a thread the runtime owns.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from flows.broker.errors import BrokerError
from flows.dead_letters.grouping import Selection
from flows.dead_letters.moving import (
    GUARANTEE,
    MOVE_PERMISSION,
    MoveJob,
    MoveTarget,
    check_target,
    record_start,
)
from flows.dead_letters.reading import CannotRead, Snapshot, read_dead_letters
from flows.publishing.fields import check_shortstr
from flows.publishing.service import allowed_exchange_patterns
from flows.runtime import runtime
from flows.topology.records import DEFAULT_EXCHANGE_ALIAS
from flows.vhosts import selected_vhost


def move_refusal(user: Any) -> str | None:
    """Why `user` may not move messages, or None."""
    if not getattr(user, "is_authenticated", False):
        return "Sign in to move messages."
    if not user.has_perm(MOVE_PERMISSION):
        return (
            "Your account may not move messages: an administrator can grant the “Can move "
            "dead-lettered messages” permission (flows.move_messages)."
        )
    return None


@require_GET
def dead_letters_page(request: HttpRequest) -> HttpResponse:
    vhost = selected_vhost(request)
    queue = (request.GET.get("queue") or "").strip()
    snapshot: Snapshot | None = None
    error = ""
    if queue:
        try:
            snapshot = read_dead_letters(vhost, queue)
        except CannotRead as exc:
            error = exc.message
        except BrokerError as exc:
            error = exc.message
    return render(
        request,
        "flows/dead_letters.html",
        {
            "vhost": vhost,
            "queue": queue,
            "snapshot": snapshot,
            "error": error,
            "refusal": move_refusal(request.user),
            "guarantee": GUARANTEE,
            "default_exchange": DEFAULT_EXCHANGE_ALIAS,
        },
        status=404 if error.startswith("There is no queue") else 200,
    )


def _optional(request: HttpRequest, name: str) -> str | None:
    value = request.POST.get(name)
    return value if value not in (None, "") else None


@require_POST
def dead_letters_move(request: HttpRequest) -> HttpResponse:
    """Start a move; answers the progress fragment (or why not)."""
    vhost = request.POST.get("vhost") or selected_vhost(request)
    queue = request.POST.get("queue") or ""
    refusal = move_refusal(request.user)
    error = refusal or ("Choose a queue." if not queue else None)
    target = MoveTarget()
    if request.POST.get("to") == "exchange":
        exchange = request.POST.get("exchange") or ""
        if exchange == DEFAULT_EXCHANGE_ALIAS:
            exchange = ""
        key = request.POST.get("routing_key") or ""
        target = MoveTarget(exchange=exchange, routing_key=key)
        error = error or check_shortstr(exchange, "the exchange name")
        error = error or check_shortstr(key, "the routing key")
    patterns = allowed_exchange_patterns()
    error = error or check_target(target, patterns)
    if error:
        return render(request, "flows/dead_letters/_move.html", {"error": error})
    selection = Selection(
        reason=_optional(request, "reason"), queue=_optional(request, "from_queue")
    )
    user_id = request.user.pk
    job = MoveJob(vhost=vhost, queue=queue, target=target, selection=selection, user_id=user_id)
    job.record_id = record_start(
        user_id=user_id, vhost=vhost, queue=queue, target=target, selection=selection
    )
    runtime().message_moves.start(job, allowed_patterns=patterns)
    return render(request, "flows/dead_letters/_move.html", {"job": job})


def _job_or_404(request: HttpRequest, job_id: str) -> MoveJob:
    job = runtime().message_moves.find(job_id)
    if job is None or (job.user_id != request.user.pk and not request.user.is_superuser):
        raise Http404("No such move")
    return job


@require_GET
def move_progress(request: HttpRequest, job_id: str) -> HttpResponse:
    return render(request, "flows/dead_letters/_move.html", {"job": _job_or_404(request, job_id)})


@require_POST
def move_cancel(request: HttpRequest, job_id: str) -> HttpResponse:
    job = _job_or_404(request, job_id)
    job.cancel()
    job.wait(5)
    return render(request, "flows/dead_letters/_move.html", {"job": job})
