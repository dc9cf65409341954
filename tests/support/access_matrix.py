"""The role-by-endpoint matrix: every page, every `/api/` endpoint and every websocket, with the
least role that may use it and what it answers then.

Each row is an `Endpoint`: what to send (`{v}` is the matrix vhost, quoted for a path or a
query), the least role allowed (`None`: any signed-in user, role or not) and the status an
allowed caller gets. Writes are real but harmless where they reach the broker (a message to
the default exchange that no queue takes), or refused by the state after the access check
(loading a scenario whose exchange the vhost already has: 409, nothing changed), so a role's
access is proven without changing what the next row sees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

ANONYMOUS, NO_ROLE, VIEWER, PUBLISHER, ADMIN, SUPERUSER = (
    "anonymous",
    "no role",
    "viewer",
    "publisher",
    "admin",
    "superuser",
)
CALLERS = (ANONYMOUS, NO_ROLE, VIEWER, PUBLISHER, ADMIN, SUPERUSER)
# What each caller may do, by the least role it passes.
RANK = {ANONYMOUS: -1, NO_ROLE: 0, VIEWER: 1, PUBLISHER: 2, ADMIN: 3, SUPERUSER: 3}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # `{v}` is the vhost, quoted to fit where it stands
    least: str | None  # the least role allowed; None: any signed-in user
    ok: int = 200
    data: dict[str, Any] = field(default_factory=dict)
    json: bool = False  # send `data` as a JSON body (the API), else as a form

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/")

    def url(self, vhost: str) -> str:
        return self.path.replace("{v}", quote(vhost, safe=""))

    def body(self, vhost: str) -> dict[str, Any]:
        text = json.dumps(self.data).replace("{v}", vhost.replace('"', '\\"'))
        return json.loads(text)

    def expected(self, caller: str) -> int:
        if caller == ANONYMOUS:
            return 401 if self.api else 302
        least = RANK[self.least] if self.least is not None else 0
        return self.ok if RANK[caller] >= least else 403

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


UNROUTABLE = {"vhost": "{v}", "exchange": "", "routing_key": "matrix.nowhere", "body": "x"}
FORM = {**UNROUTABLE, "body_encoding": "text", "mandatory_present": "1", "mandatory": "true"}
START = {"vhost": "{v}", "action": "start"}
EVENT = {"event": json.dumps({"kind": "publish", "exchange": "x", "routing_key": "k"})}

PAGES = [
    Endpoint("GET", "/", VIEWER),
    Endpoint("GET", "/overview/status", VIEWER),
    Endpoint("GET", "/topology/?vhost={v}", VIEWER),
    Endpoint("GET", "/topology/details?vhost={v}&kind=exchange&name=amq.direct", VIEWER),
    Endpoint("GET", "/topology/route?vhost={v}&exchange=amq.direct&routing_key=k", VIEWER),
    Endpoint("GET", "/live/?vhost={v}", VIEWER),
    Endpoint("GET", "/live/consumption?vhost={v}", VIEWER),
    Endpoint("POST", "/live/details", VIEWER, data=EVENT),
    Endpoint("GET", "/publish/?vhost={v}", VIEWER),
    Endpoint("POST", "/publish/send", PUBLISHER, data=FORM),
    Endpoint("GET", "/publish/runs/no-such-run", VIEWER, ok=404),
    Endpoint("POST", "/publish/runs/no-such-run/cancel", VIEWER, ok=404),
    Endpoint("POST", "/publish/templates/save", PUBLISHER, data={**FORM, "template_name": "m"}),
    Endpoint("POST", "/publish/templates/{template}/publish", PUBLISHER),
    Endpoint("POST", "/publish/templates/{template}/delete", VIEWER),
    Endpoint("GET", "/demo/", VIEWER),
    Endpoint("GET", "/demo/topics/?vhost={v}", VIEWER),
    Endpoint("GET", "/demo/topics/controls?vhost={v}", VIEWER),
    # The vhost holds an exchange named as the scenario's: the load is refused, unchanged.
    Endpoint("POST", "/demo/topics/load", ADMIN, ok=409, data={"vhost": "{v}"}),
    Endpoint("POST", "/demo/topics/unload", ADMIN, ok=409, data={"vhost": "{v}"}),
    Endpoint(
        "POST", "/demo/topics/run", PUBLISHER, ok=409, data={"vhost": "{v}", "action": "start"}
    ),
    Endpoint("POST", "/demo/topics/publisher", PUBLISHER, ok=409, data={"vhost": "{v}"}),
    Endpoint("POST", "/demo/topics/workers", PUBLISHER, ok=409, data={"vhost": "{v}"}),
    Endpoint(
        "POST",
        "/demo/topics/step",
        PUBLISHER,
        ok=409,
        data={"vhost": "{v}", "publisher": "food app"},
    ),
    # The matrix vhost has an exchange `food`, which nothing is bound to: unroutable.
    Endpoint(
        "POST",
        "/demo/topics/publish",
        PUBLISHER,
        data={"vhost": "{v}", "exchange": "food", "routing_key": "matrix.nowhere", "body": "x"},
    ),
    # Not loaded in the matrix vhost: a link is refused after the access check, none made.
    Endpoint("POST", "/demo/topics/audience", ADMIN, ok=400, data={"vhost": "{v}"}),
    Endpoint("POST", "/demo/topics/audience/999999/revoke", ADMIN, ok=400, data={"vhost": "{v}"}),
    Endpoint("GET", "/audit/", ADMIN),
    # The page is a viewer's; reading a queue on it takes the admin role (test_dead_letters).
    Endpoint("GET", "/dead-letters/?vhost={v}", VIEWER),
    Endpoint("POST", "/dead-letters/move", ADMIN, data={"vhost": "{v}"}),  # "Choose a queue."
    Endpoint("GET", "/dead-letters/moves/no-such-move", ADMIN, ok=404),
    Endpoint("POST", "/dead-letters/moves/no-such-move/cancel", ADMIN, ok=404),
    Endpoint("POST", "/publish/prefill", VIEWER, data=EVENT),
    Endpoint("POST", "/live/publish-again", PUBLISHER, data=EVENT),
    Endpoint("GET", "/recordings/?vhost={v}", VIEWER),
    # Bounds that are not valid: refused after the access check (back to the live page with
    # the reason), no recording started.
    Endpoint("POST", "/recordings/start", ADMIN, ok=302, data={"vhost": "{v}", "hours": "x"}),
    Endpoint("POST", "/recordings/999999/stop", ADMIN, ok=404),
    Endpoint("GET", "/recordings/999999/export", VIEWER, ok=404),
    Endpoint("GET", "/messages/?vhost={v}&message_id=matrix", VIEWER),
]

API = [
    Endpoint("GET", "/api/openapi.json", VIEWER),
    Endpoint("GET", "/api/topology?vhost={v}", VIEWER),
    Endpoint("GET", "/api/route?vhost={v}&exchange=amq.direct&routing_key=k", VIEWER),
    Endpoint("POST", "/api/publish", PUBLISHER, data=UNROUTABLE, json=True),
    Endpoint(
        "POST",
        "/api/exchanges/{v}/amq.default/publish",
        PUBLISHER,
        json=True,
        data={
            "routing_key": "matrix.nowhere",
            "payload": "x",
            "payload_encoding": "string",
            "properties": {},
        },
    ),
    Endpoint("GET", "/api/publish/runs/no-such-run", VIEWER, ok=404),
    Endpoint("POST", "/api/publish/runs/no-such-run/cancel", VIEWER, ok=404, json=True),
    Endpoint("GET", "/api/audit", ADMIN),
    Endpoint("GET", "/api/audit?action=publish&limit=5", ADMIN),
    Endpoint("GET", "/api/messages?vhost={v}&message_id=matrix", VIEWER),
    Endpoint("GET", "/api/no-such-endpoint", None, ok=404),
]

# Websockets: accepted ("open") or closed with the code a refusal uses.
WEBSOCKETS = [
    ("/ws/live/?vhost={v}", VIEWER),
    ("/ws/tap/?vhost={v}&mode=bindings", VIEWER),
    ("/ws/tap/?vhost={v}&mode=firehose", ADMIN),
]


def websocket_expected(least: str, caller: str) -> int | str:
    if caller == ANONYMOUS:
        return 4401
    return "open" if RANK[caller] >= RANK[least] else 4403
