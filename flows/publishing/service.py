"""Publishing as one service: the form, the JSON API and templates all call `publish_message`.

Order of checks: permission, fields, allow-list; then the dry-run's prediction (from the
shared topology snapshot; publishing still works when it cannot be read), then the publish itself
on the vhost's long-lived publisher, or a repeat run.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from flows import audit
from flows.broker.errors import BrokerError
from flows.publishing import publisher
from flows.publishing.fields import DEFAULT_MAX_BODY_BYTES, PublishRequest, parse_publish_request
from flows.publishing.observed import observed_routed_queues
from flows.publishing.policy import (
    PublishForbidden,
    permission_refusal,
    refusal_outside_allow_list,
)
from flows.routing_rules.prediction import Prediction, no_prediction
from flows.routing_rules.prediction import predict as predict_route
from flows.runtime import runtime
from flows.topology.records import DEFAULT_EXCHANGE_ALIAS


@dataclass(frozen=True)
class PublishResult:
    request: PublishRequest
    prediction: Prediction
    outcome: publisher.PublishOutcome | None = None
    run: publisher.RepeatRun | None = None
    # Queues the firehose saw the message routed to; None when not known.
    observed_queues: list[str] | None = None
    duplicate: bool = False
    notes: tuple[str, ...] = field(default=())
    body_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        request = self.request
        data: dict[str, Any] = {
            "vhost": request.vhost,
            "exchange": request.exchange,
            "routing_key": request.routing_key,
            "message_id": request.message_id,
            "mandatory": request.mandatory,
            "body_bytes": self.body_bytes,
            "predicted": self.prediction.to_json(),
            "observed_queues": self.observed_queues,
            "duplicate": self.duplicate,
        }
        if self.outcome is not None:
            outcome = self.outcome
            data.update(
                {
                    "status": outcome.status,
                    "confirmed": outcome.confirmed,
                    "nacked": not outcome.confirmed,
                    "returned": outcome.returned,
                    "reply_code": outcome.reply_code,
                    "reply_text": outcome.reply_text,
                    "elapsed_ms": round(outcome.elapsed_ms, 2),
                }
            )
        if self.run is not None:
            data["status"] = "repeating"
            data["run"] = self.run.snapshot()
        return data


def allowed_exchange_patterns() -> list[str]:
    return list(getattr(settings, "FLOWS_PUBLISH_EXCHANGES", []))


def max_body_bytes() -> int:
    return int(getattr(settings, "FLOWS_PUBLISH_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))


def check_request(
    user, raw: Mapping[str, Any], *, generate_message_id: bool = True
) -> PublishRequest:
    """Permission, fields, allow-list: raises PublishForbidden or PublishInvalid."""
    refusal = permission_refusal(user)
    if refusal:
        raise PublishForbidden(refusal)
    request = check_fields(raw, generate_message_id=generate_message_id)
    refusal = permission_refusal(user, request.vhost)
    if refusal:
        raise PublishForbidden(refusal, field="vhost")
    return request


def check_fields(raw: Mapping[str, Any], *, generate_message_id: bool = True) -> PublishRequest:
    """Fields and allow-list, without a user: for `check_request`, and for `manage.py
    replay`, which an operator runs with the process's own broker credentials."""
    request = parse_publish_request(
        raw, max_body_bytes=max_body_bytes(), generate_message_id=generate_message_id
    )
    refusal = refusal_outside_allow_list(request.exchange, allowed_exchange_patterns())
    if refusal:
        raise PublishForbidden(refusal, field="exchange")
    return request


def predict(request: PublishRequest) -> Prediction:
    """The dry-run's answer from the shared topology snapshot; publishing works without it."""
    try:
        topology = runtime().topology_cache.topology(request.vhost)
    except BrokerError as exc:
        return no_prediction(
            f"No prediction: {exc.message}",
            vhost=request.vhost,
            exchange=request.exchange,
            routing_key=request.routing_key,
            headers=request.headers,
        )
    return predict_route(
        topology,
        exchange=request.exchange,
        routing_key=request.routing_key,
        headers=request.headers,
    )


def publish_checked(request: PublishRequest, *, owner_id: int | None = None) -> PublishResult:
    """Publish an already checked request (raises publisher.PublishFailed)."""
    prediction = predict(request)
    if request.repeat > 1:
        run = runtime().publishers.start_repeat(request, owner_id=owner_id)
        return PublishResult(
            request=request, prediction=prediction, run=run, body_bytes=len(request.body)
        )
    published_after = time.monotonic()
    outcome = runtime().publishers.publish(request)
    observed = None
    if request.message_id is not None:
        observed = observed_routed_queues(
            request.vhost, request.message_id, published_after=published_after
        )
    return PublishResult(
        request=request,
        prediction=prediction,
        outcome=outcome,
        observed_queues=observed,
        body_bytes=len(request.body),
    )


# --- publishing once per submitted form ---------------------------------------------------------


class IdempotentPublishes:
    """Remembers the result of each (user, token), so a double-submitted form publishes once.

    The second request waits for the first and gets the same answer. A request that fails
    before or while publishing frees its token, so the person can fix it and submit again.
    The process's one instance is `flows.runtime.runtime().idempotent_publishes`.
    """

    def __init__(self, capacity: int = 1000) -> None:
        self._capacity = capacity
        self._results: OrderedDict[tuple[Any, str], Future[PublishResult]] = OrderedDict()
        self._lock = threading.Lock()

    def run(self, key: tuple[Any, str], work) -> PublishResult:
        with self._lock:
            existing = self._results.get(key)
            if existing is None:
                mine: Future[PublishResult] = Future()
                self._results[key] = mine
                while len(self._results) > self._capacity:
                    self._results.popitem(last=False)
        if existing is not None:
            try:
                result = existing.result(timeout=publisher.PUBLISH_TIMEOUT_S + 5)
            except FutureTimeout:
                raise publisher.PublishFailed(
                    "The same form is still being published; look again in a moment.",
                    kind="timeout",
                ) from None
            return dataclasses.replace(result, duplicate=True)
        try:
            result = work()
        except BaseException as exc:
            with self._lock:
                self._results.pop(key, None)
            mine.set_exception(exc)
            raise
        # Remember the answer without the body (up to FLOWS_PUBLISH_MAX_BODY_BYTES each).
        light = dataclasses.replace(
            result, request=dataclasses.replace(result.request, body=b"", body_display="")
        )
        mine.set_result(light)
        return result


def _audit(
    user,
    request: PublishRequest,
    *,
    result: PublishResult | None = None,
    ok: bool = True,
    message: str = "",
) -> None:
    """One entry per publish, and one per repeat run (not one per copy); never the body."""
    extra: dict[str, Any] = {"mandatory": request.mandatory}
    if request.repeat > 1:
        extra.update(repeat=request.repeat, rate=request.rate)
        if result is not None and result.run is not None:
            extra["run"] = result.run.id
    if result is not None and result.outcome is not None:
        message = result.outcome.status
    audit.record(
        user,
        audit.REPEAT_RUN if request.repeat > 1 else audit.PUBLISH,
        vhost=request.vhost,
        target=request.exchange or DEFAULT_EXCHANGE_ALIAS,
        details=audit.message_details(
            exchange=request.exchange,
            routing_key=request.routing_key,
            message_id=request.message_id,
            body_bytes=len(request.body),
            **extra,
        ),
        ok=ok,
        message=message,
    )


def publish_message(
    user,
    raw: Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
    generate_message_id: bool = True,
) -> PublishResult:
    """Check and publish what a person asked for; the one entry point for views and the API.

    Raises PublishForbidden, PublishInvalid or publisher.PublishFailed.
    """

    def work() -> PublishResult:
        request = check_request(user, raw, generate_message_id=generate_message_id)
        try:
            result = publish_checked(request, owner_id=getattr(user, "pk", None))
        except publisher.PublishFailed as exc:
            _audit(user, request, ok=False, message=exc.message)
            raise
        _audit(user, request, result=result)
        return result

    if not idempotency_key:
        return work()
    key = (getattr(user, "pk", None), idempotency_key)
    return runtime().idempotent_publishes.run(key, work)
