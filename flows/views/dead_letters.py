"""The dead-letters page (`/dead-letters/?vhost=&queue=`): a queue's dead-lettered messages
by reason and origin, and moves of them, as background jobs with progress and cancel.

Reading goes through `flows.dead_letters.reading` (a snapshot that gives every message
back), moving through `flows.dead_letters.moving` on a thread the runtime owns. Both take
the admin role (`flows.move_messages`), and reading happens only when asked (`read=1`, a
button): a snapshot takes every message off the queue for a moment and gives it back
marked redelivered, which is consuming from a user's queue.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from flows import access
from flows.access import Action
from flows.broker.errors import BrokerError
from flows.dead_letters.grouping import Selection
from flows.dead_letters.moving import (
    GUARANTEE,
    MoveJob,
    MoveTarget,
    check_target,
    record_start,
)
from flows.dead_letters.reading import (
    CannotRead,
    Snapshot,
    parse_stream_start,
    read_dead_letters,
)
from flows.parsing import boolean_word
from flows.publishing.fields import check_shortstr
from flows.publishing.service import allowed_exchange_patterns
from flows.runtime import runtime
from flows.topology.records import DEFAULT_EXCHANGE_ALIAS
from flows.views.access import page_vhost, requires


def move_refusal(user: Any, vhost: str | None = None) -> str | None:
    """Why `user` may not read or move dead-lettered messages (on `vhost`), or None."""
    refusal = access.refusal(user, Action.MOVE_MESSAGES, vhost)
    return refusal.message if refusal is not None else None


@require_GET
@requires(Action.VIEW)
def dead_letters_page(request: HttpRequest) -> HttpResponse:
    vhost = page_vhost(request)
    queue = (request.GET.get("queue") or "").strip()
    refusal = move_refusal(request.user, vhost)
    asked = boolean_word(request.GET.get("read") or "") is True
    snapshot: Snapshot | None = None
    error = ""
    stream_from = request.GET.get("from", "")
    try:
        start = parse_stream_start(stream_from)
    except ValueError as exc:
        error, asked = str(exc), False
    if queue and asked and refusal is None:
        try:
            snapshot = read_dead_letters(vhost, queue, start=start)
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
            "asked": asked,
            "stream_from": stream_from,
            "refusal": refusal,
            "guarantee": GUARANTEE,
            "default_exchange": DEFAULT_EXCHANGE_ALIAS,
        },
        status=404 if error.startswith("There is no queue") else 200,
    )


def _optional(request: HttpRequest, name: str) -> str | None:
    value = request.POST.get(name)
    return value if value not in (None, "") else None


@require_POST
@requires(Action.MOVE_MESSAGES)
def dead_letters_move(request: HttpRequest) -> HttpResponse:
    """Start a move; answers the progress fragment (or why not)."""
    vhost = page_vhost(request, request.POST.get("vhost") or None)
    queue = request.POST.get("queue") or ""
    refusal = move_refusal(request.user, vhost)
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
        user=request.user, vhost=vhost, queue=queue, target=target, selection=selection
    )
    runtime().message_moves.start(job, allowed_patterns=patterns)
    return render(request, "flows/dead_letters/_move.html", {"job": job})


def _job_or_404(request: HttpRequest, job_id: str) -> MoveJob:
    job = runtime().message_moves.find(job_id)
    if job is None or (job.user_id != request.user.pk and not request.user.is_superuser):
        raise Http404("No such move")
    return job


@require_GET
@requires(Action.MOVE_MESSAGES)
def move_progress(request: HttpRequest, job_id: str) -> HttpResponse:
    return render(request, "flows/dead_letters/_move.html", {"job": _job_or_404(request, job_id)})


@require_POST
@requires(Action.MOVE_MESSAGES)
def move_cancel(request: HttpRequest, job_id: str) -> HttpResponse:
    job = _job_or_404(request, job_id)
    job.cancel()
    job.wait(5)
    return render(request, "flows/dead_letters/_move.html", {"job": job})
