"""Every response carries the browser hardening headers: a Content-Security-Policy without
inline script or style, nosniff, the frame policy and the referrer policy. Every URL the
dashboard has is asked (the table must name each one), signed in and not, with whatever
status it answers; plus a static file and a page that does not exist."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.support.live_server import REPO_ROOT

pytestmark = pytest.mark.django_db

# Every URL name, with a path to ask (GET: POST-only views answer 405, with the headers too).
PATHS = {
    "login-link": "/accounts/link/not-a-token/",
    "login": "/accounts/login/",
    "logout": "/accounts/logout/",
    "overview": "/",
    "overview-status": "/overview/status",
    "publish": "/publish/",
    "publish-submit": "/publish/send",
    "publish-run": "/publish/runs/nope",
    "publish-run-cancel": "/publish/runs/nope/cancel",
    "publish-template-save": "/publish/templates/save",
    "publish-template-publish": "/publish/templates/1/publish",
    "publish-template-delete": "/publish/templates/1/delete",
    "topology": "/topology/",
    "topology-details": "/topology/details?kind=queue&name=nope",
    "topology-route": "/topology/route?exchange=nope",
    "live": "/live/",
    "live-details": "/live/details",
    "live-consumption": "/live/consumption",
    "demo": "/demo/",
    "demo-scenario": "/demo/topics/",
    "demo-load": "/demo/topics/load",
    "demo-unload": "/demo/topics/unload",
    "demo-controls": "/demo/topics/controls",
    "demo-run": "/demo/topics/run",
    "demo-publisher": "/demo/topics/publisher",
    "demo-workers": "/demo/topics/workers",
    "demo-step": "/demo/topics/step",
    "demo-compose": "/demo/topics/publish",
    "demo-audience": "/demo/topics/audience",
    "demo-audience-revoke": "/demo/topics/audience/1/revoke",
    "watch": "/watch/not-a-token/",
    "watch-topology": "/watch/not-a-token/topology",
    "api-openapi": "/api/openapi.json",
    "api-publish": "/api/publish",
    "api-publish-run": "/api/publish/runs/nope",
    "api-publish-run-cancel": "/api/publish/runs/nope/cancel",
    "api-mgmt-publish": "/api/exchanges/%2F/amq.default/publish",
    "api-topology": "/api/topology",
    "api-route": "/api/route?exchange=nope",
    "api-not-found": "/api/nothing-here",
    "audit": "/audit/",
    "dead-letters": "/dead-letters/",
    "dead-letters-move": "/dead-letters/move",
    "dead-letters-move-progress": "/dead-letters/moves/nope",
    "dead-letters-move-cancel": "/dead-letters/moves/nope/cancel",
    "publish-prefill": "/publish/prefill",
    "live-publish-again": "/live/publish-again",
    "api-audit": "/api/audit",
    "api-messages": "/api/messages?message_id=nope",
    "recordings": "/recordings/",
    "recording-start": "/recordings/start",
    "recording-stop": "/recordings/1/stop",
    "recording-export": "/recordings/1/export",
    "messages": "/messages/?message_id=nope",
}
EXTRA_PATHS = ["/static/flows/app.css", "/no-such-page"]

EXPECTED_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def url_names(resolver: URLResolver) -> set[str]:
    names: set[str] = set()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            names |= url_names(pattern)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(pattern.name)
    return names


def test_the_table_names_every_url() -> None:
    assert set(PATHS) == url_names(get_resolver())


def policy(header: str) -> dict[str, str]:
    directives = (part.strip().split(None, 1) for part in header.split(";") if part.strip())
    return {name: value for name, value in directives}


def assert_hardened(response) -> None:
    assert policy(response["Content-Security-Policy"]) == EXPECTED_POLICY
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    # Audience pages carry their token in the URL and send no referrer at all (stricter).
    assert response["Referrer-Policy"] in {"same-origin", "no-referrer"}
    if response.streaming:  # a static file: read it to the end, which closes it
        b"".join(response.streaming_content)


@pytest.mark.parametrize("path", [*PATHS.values(), *EXTRA_PATHS])
def test_every_response_carries_the_headers(client, django_user_model, broker_vhost, path) -> None:
    assert_hardened(client.get(path))  # anonymous: the sign-in redirect, or a JSON 401
    client.force_login(django_user_model.objects.create_user(username="reader"))
    client.cookies["vhost"] = broker_vhost
    assert_hardened(client.get(path))


def test_no_template_has_inline_script_or_style() -> None:
    offenders = []
    for template in sorted((REPO_ROOT / "templates").rglob("*.html")):
        text = template.read_text()
        for needle in ("style=", "<style", " on", "javascript:"):
            for line in text.splitlines():
                if needle == " on" and not _has_event_attribute(line):
                    continue
                if needle in line:
                    offenders.append(f"{template.relative_to(REPO_ROOT)}: {line.strip()}")
        for line in text.splitlines():
            if "<script" in line and " src=" not in line:
                offenders.append(f"{template.relative_to(REPO_ROOT)}: {line.strip()}")
    assert offenders == []


def _has_event_attribute(line: str) -> bool:
    import re

    return re.search(r"\son[a-z]+\s*=", line) is not None


def test_every_post_form_carries_a_csrf_token() -> None:
    """A form posted by htmx gets the token from the page's hx-headers; the rest need theirs."""
    import re

    missing = []
    for template in sorted((REPO_ROOT / "templates").rglob("*.html")):
        text = template.read_text()
        for form in re.finditer(r"<form\b[^>]*>(.*?)</form>", text, re.DOTALL):
            opening = form.group(0).split(">", 1)[0]
            posts = 'method="post"' in opening.lower()
            if posts and "{% csrf_token %}" not in form.group(1):
                missing.append(f"{template.relative_to(REPO_ROOT)}: {opening}")
    assert missing == []
    base = (REPO_ROOT / "templates" / "base.html").read_text()
    assert """hx-headers='{"X-CSRFToken": "{{ csrf_token }}"}'""" in base


@pytest.mark.parametrize(
    "path", ["/publish/send", "/demo/topics/load", "/live/details", "/accounts/logout/"]
)
def test_a_form_post_without_the_csrf_token_is_refused(django_user_model, path) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_user(username="poster"))
    assert client.post(path, {"vhost": "/"}).status_code == 403


def settings_in_a_process(**env: str) -> dict:
    """Some settings as a fresh process reads them from `env` (settings are read once)."""
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({name: getattr(s, name) for name in ["
        "'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_SSL_REDIRECT', "
        "'SECURE_HSTS_SECONDS', 'SECURE_PROXY_SSL_HEADER', 'FLOWS_MASK']}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FLOWS_"))}
    output = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "dashboard.settings", **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {},
            {
                "SESSION_COOKIE_SECURE": False,
                "CSRF_COOKIE_SECURE": False,
                "SECURE_SSL_REDIRECT": False,
                "SECURE_HSTS_SECONDS": 0,
                "SECURE_PROXY_SSL_HEADER": None,
            },
        ),
        (
            {"DJANGO_HTTPS": "true", "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"},
            {
                "SESSION_COOKIE_SECURE": True,
                "CSRF_COOKIE_SECURE": True,
                "SECURE_SSL_REDIRECT": True,
                "SECURE_HSTS_SECONDS": 31_536_000,
                "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
            },
        ),
        ({"DJANGO_HTTPS": "true", "DJANGO_HSTS_SECONDS": "600"}, {"SECURE_HSTS_SECONDS": 600}),
        (
            {},
            {
                "FLOWS_MASK": [
                    "password",
                    "passwd",
                    "secret",
                    "token",
                    "authorization",
                    "api_key",
                    "*card*",
                ]
            },
        ),
        ({"FLOWS_MASK": ""}, {"FLOWS_MASK": []}),
        ({"FLOWS_MASK": "pin, *secret*"}, {"FLOWS_MASK": ["pin", "*secret*"]}),
    ],
    ids=["http", "https-behind-a-proxy", "hsts-seconds", "mask-default", "mask-off", "mask-set"],
)
def test_settings_from_the_environment(env: dict[str, str], expected: dict) -> None:
    read = settings_in_a_process(**env)
    assert {name: read[name] for name in expected} == expected


def test_over_https_cookies_are_secure_and_hsts_is_sent(client, settings) -> None:
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.CSRF_COOKIE_SECURE = True
    response = client.get("/accounts/login/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000"
    assert response.cookies["csrftoken"]["secure"] is True
