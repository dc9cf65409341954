from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET

from flows.login_links import redeem_login_link


@login_not_required
@require_GET
def redeem(request: HttpRequest, token: str) -> HttpResponse:
    user = redeem_login_link(token)
    if user is None:
        messages.error(
            request,
            "This sign-in link has expired or was already used. "
            "Run `python manage.py login_link` for a new one.",
        )
        return redirect("login")
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect("overview")
