"""Publishing as one service: the form, the JSON API and templates all call `publish_message`.

Order of checks: permission, fields, allow-list; then the dry-run's prediction (from the
shared topology snapshot; publishing still works when it cannot be read), then the publish itself
on the vhost's long-lived publisher, or a repeat run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import BaseCache

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
from flows.publishing.runs import RunStatus
from flows.routing_rules.prediction import Prediction, no_prediction
from flows.routing_rules.prediction import predict as predict_route
from flows.runtime import runtime
from flows.shared_store import SharedStoreDown, reaching_store, shared_store
from flows.topology.records import DEFAULT_EXCHANGE_ALIAS

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishResult:
    request: PublishRequest
    prediction: Prediction
    outcome: publisher.PublishOutcome | None = None
    run: RunStatus | None = None  # a repeat run's status when it started
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
            data["run"] = self.run.to_json()
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
            request=request, prediction=prediction, run=run.status(), body_bytes=len(request.body)
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


def own_run(user, run_id: str) -> RunStatus | None:
    """A repeat run's status for its owner or an administrator; None for anyone else."""
    run = runtime().publishers.find_run(run_id)
    if run is None or (run.owner_id != user.pk and not user.is_superuser):
        return None
    return run


def cancel_own_run(user, run_id: str) -> RunStatus | None:
    """Stop a run of the user's own (or any, for an administrator), in whichever process it
    publishes; its status once stopped. None when it is not the user's to see."""
    if own_run(user, run_id) is None:
        return None
    return runtime().publishers.cancel_run(run_id)


# --- publishing once per submitted form ---------------------------------------------------------


# How long a claimed token waits for its publish before another submit may take it over:
# the publish's own limit, with room for the prediction's topology read.
CLAIM_TIMEOUT_S = publisher.PUBLISH_TIMEOUT_S + 45
# How long a submitted form's answer is remembered for a resubmit.
ANSWER_KEPT_S = 3600
# How long a resubmit waits for the first submit's answer, and how often it looks.
DUPLICATE_WAIT_S = publisher.PUBLISH_TIMEOUT_S + 5
DUPLICATE_POLL_S = 0.05
_PUBLISHING = "publishing"  # a token's value while its first submit publishes


class IdempotentPublishes:
    """Each (user, token)'s answer, so a form or API call submitted twice publishes once.

    Kept in Django's cache, which several web workers share when it is Redis
    (`dashboard.env.caches`): the two submits of a double click may reach two workers. The
    first claims the token atomically (`cache.add`); the second waits for its answer and
    gets the same one, marked `duplicate`. A request that fails before or while publishing
    frees its token, so the person can fix it and submit again (a resubmit waiting on it
    then tries itself). The process's one instance is `runtime().idempotent_publishes`.
    """

    def __init__(self, store: BaseCache | None = None, *, wait_s: float = DUPLICATE_WAIT_S) -> None:
        self._store = store if store is not None else shared_store()
        self._wait_s = wait_s

    def run(self, key: tuple[Any, str], work: Callable[[], PublishResult]) -> PublishResult:
        cache_key = _token_key(key)
        deadline = time.monotonic() + self._wait_s
        try:
            with reaching_store("nothing was published (a form sent twice must publish once)"):
                answer = self._claim(cache_key, deadline)
        except SharedStoreDown as exc:
            raise publisher.PublishFailed(exc.message, kind="unavailable") from exc
        if answer is not None:
            return self._duplicate(answer)
        try:
            result = work()
        except BaseException:
            with contextlib.suppress(SharedStoreDown), reaching_store("the claim stays"):
                self._store.delete(cache_key)  # else it lapses with CLAIM_TIMEOUT_S
            raise
        # Remembered without the body (up to FLOWS_PUBLISH_MAX_BODY_BYTES each).
        light = dataclasses.replace(
            result, request=dataclasses.replace(result.request, body=b"", body_display="")
        )
        try:
            self._store.set(cache_key, light, timeout=ANSWER_KEPT_S)
        except Exception:
            # Published all the same: the claim stays, so a resubmit cannot publish again
            # (it is told the form is still being published), and lapses in a minute.
            LOGGER.exception("could not remember the answer to a submitted form")
        return result

    def _claim(self, cache_key: str, deadline: float) -> PublishResult | None:
        """Claim the token (None), or wait for the answer of the submit that did."""
        while not self._store.add(cache_key, _PUBLISHING, timeout=CLAIM_TIMEOUT_S):
            answer = self._store.get(cache_key)
            if isinstance(answer, PublishResult):
                return answer
            if time.monotonic() >= deadline:
                raise publisher.PublishFailed(
                    "The same form is still being published; look again in a moment.",
                    kind="timeout",
                )
            if answer is not None:  # still publishing (None: it failed, so claim it again)
                time.sleep(DUPLICATE_POLL_S)
        return None

    @staticmethod
    def _duplicate(answer: PublishResult) -> PublishResult:
        """The first submit's answer; a repeat run's progress as it is now."""
        run = answer.run
        if run is not None:
            run = runtime().publishers.find_run(run.id) or run
        return dataclasses.replace(answer, duplicate=True, run=run)


def _token_key(key: tuple[Any, str]) -> str:
    user_id, token = key
    # Hashed: a cache key has a bounded length and alphabet, and a token is anything sent.
    return f"publish-once:{user_id}:{hashlib.sha256(token.encode(errors='replace')).hexdigest()}"


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
