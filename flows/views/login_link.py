from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
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
    # `serve --demo NAME` sends the speaker straight to the scenario's page; only a path on
    # this site is followed, never another host.
    after = request.GET.get("next", "")
    if url_has_allowed_host_and_scheme(after, allowed_hosts={request.get_host()}):
        return redirect(after)
    return redirect("overview")
