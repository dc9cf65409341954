"""The sign-in page: Django's `LoginView`, with repeated failures slowed down.

`flows.sign_in_throttle` decides; this form asks it before checking a password, tells it
each failure and success, and the view answers a throttled attempt with 429.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpResponse

from flows.shared_store import SharedStoreDown, reaching_store
from flows.sign_in_throttle import sign_in_throttle

THROTTLED = "throttled"
UNAVAILABLE = "unavailable"


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        address = str(self.request.META.get("REMOTE_ADDR", "")) if self.request else ""
        throttle = sign_in_throttle()
        try:
            # Closed when the store cannot say: a throttle that lets everyone through while
            # Redis is down is no throttle.
            with reaching_store(
                "nobody can sign in until it is back (failed sign-ins are counted there)"
            ):
                wait = throttle.wait_s(username, address)
        except SharedStoreDown as exc:
            raise ValidationError(exc.message, code=UNAVAILABLE) from exc
        if wait > 0:
            raise ValidationError(
                "Too many failed sign-ins for this account from your address: "
                f"try again in {math.ceil(wait)} s.",
                code=THROTTLED,
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            with contextlib.suppress(SharedStoreDown), reaching_store("not counted"):
                throttle.failed(username, address)
            raise
        with contextlib.suppress(SharedStoreDown), reaching_store("not forgotten"):
            throttle.succeeded(username, address)
        return cleaned


class SignInView(LoginView):
    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, THROTTLED):
            response.status_code = 429
        elif form.has_error(NON_FIELD_ERRORS, UNAVAILABLE):
            response.status_code = 503
        return response
