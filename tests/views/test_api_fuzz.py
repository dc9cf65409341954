"""A schema-driven fuzz of the JSON API: schemathesis generates requests from the served
OpenAPI document (`flows/views/openapi.py`), valid ones and ones that break it, and the
dashboard answers each on the real broker, signed in by HTTP Basic as a publisher.

Every answer must be JSON; no 5xx but 502/503, and those with the error shape; every error
`{"error", "fields"}`; every status one the document lists for the operation. Publishes are
harmless: the publisher may use only a scratch vhost, and the allow-list only `fuzz.*`
exchanges, none of which exist; afterwards the scratch vhost holds what it held, and no vhost
was made but other test runs' scratch ones.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

import pytest
import schemathesis
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core import NOT_SET
from schemathesis.generation import GenerationMode

from flows.broker.management_api import ManagementClient
from flows.views.openapi import openapi_document
from tests.support.accounts import make_user

pytestmark = pytest.mark.django_db

PASSWORD = "fuzz-password-1"
# Per operation and generation mode; 8 operations x 3 passes x 90 = 2,160 requests.
EXAMPLES = 90
AT_LEAST = 2_000
GATEWAY = {502, 503}


def broker_state(client: ManagementClient, vhost: str) -> tuple[Any, ...]:
    return (
        sorted(e["name"] for e in client.exchanges(vhost)),
        sorted(q["name"] for q in client.queues(vhost)),
        len(client.bindings(vhost)),
    )


def send(client: Client, case: Any, auth: str) -> Any:
    path = case.formatted_path
    extra = {"HTTP_AUTHORIZATION": auth, "QUERY_STRING": ""}
    query = {k: v for k, v in (case.query or {}).items() if v is not None}
    if case.method.upper() == "GET":
        return client.get(path, query, **extra)
    if case.body is NOT_SET:
        body: bytes | str = ""
    elif isinstance(case.body, bytes):  # a negative case's raw body
        body = case.body
    else:
        body = json.dumps(case.body)
    return client.generic(
        case.method.upper(),
        path + ("?" + _encode(query) if query else ""),
        body,
        content_type=case.media_type or "application/json",
        **extra,
    )


def _encode(query: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: str(v) for k, v in query.items()}, doseq=True)


def test_the_fuzz_finds_no_500_in_2000_generated_requests(
    client: Client,
    settings_fixture: Any,
    management_client: ManagementClient,
    scratch_vhost: str,
    fresh_runtime: Any,  # after the vhost: its publishers stop before the vhost goes
) -> None:
    make_user("fuzzer", role="publisher", password=PASSWORD, vhosts=[scratch_vhost])
    auth = "Basic " + base64.b64encode(f"fuzzer:{PASSWORD}".encode()).decode()
    vhosts_before = {v.name for v in management_client.vhosts()}
    state_before = broker_state(management_client, scratch_vhost)

    document = openapi_document()
    schema = schemathesis.openapi.from_dict(document)
    statuses: Counter[int] = Counter()
    failures: list[str] = []

    def check(case: Any, operation: dict[str, Any]) -> None:
        response = send(client, case, auth)
        statuses[response.status_code] += 1
        where = f"{case.method} {case.formatted_path} {case.query} {case.body!r:.200}"
        if response.status_code == 304:
            return
        try:
            answer = json.loads(response.content)
        except ValueError:
            failures.append(f"not JSON ({response.status_code}): {where}")
            return
        if str(response.status_code) not in operation["responses"]:
            failures.append(f"undocumented {response.status_code} {answer}: {where}")
        if response.status_code >= 400 and (
            not isinstance(answer, dict) or set(answer) != {"error", "fields"}
        ):
            failures.append(f"not the error shape ({response.status_code}): {where}")
        if response.status_code >= 500 and response.status_code not in GATEWAY:
            failures.append(f"{response.status_code} {answer}: {where}")

    for result in schema.get_all_operations():
        api_operation = result.ok()
        documented = document["paths"][api_operation.path][api_operation.method.lower()]
        names = {p["name"] for p in documented["parameters"]}
        passes: list[Any] = [
            api_operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            api_operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        ]
        # The scratch vhost too, where the reads reach the broker instead of a 403.
        if "vhost" in names:
            passes.append(
                api_operation.as_strategy(
                    generation_mode=GenerationMode.POSITIVE, query={"vhost": scratch_vhost}
                )
            )
        elif "names" in names:
            passes.append(
                api_operation.as_strategy(
                    generation_mode=GenerationMode.POSITIVE,
                    path_parameters={"names": f"{scratch_vhost}/fuzz.none"},
                )
            )
        else:
            passes.append(st.one_of(passes[0], passes[1]))
        for strategy in passes:
            fuzzer(strategy, lambda case, documented=documented: check(case, documented))()

    total = sum(statuses.values())
    print(f"fuzz: {total} requests, statuses {dict(sorted(statuses.items()))}")
    assert not failures, "\n".join(failures[:20])
    assert total >= AT_LEAST, statuses
    assert broker_state(management_client, scratch_vhost) == state_before
    made = {v.name for v in management_client.vhosts()} - vhosts_before
    # Other test runs on this broker make scratch vhosts meanwhile; the fuzz makes none.
    assert all(name.startswith("flows-test-") for name in made), made


def fuzzer(strategy: Any, check: Any) -> Any:
    """A Hypothesis test sending `EXAMPLES` cases of `strategy` to `check`."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def fuzz(case: Any) -> None:
        check(case)

    return fuzz


@pytest.fixture
def settings_fixture(settings: Any) -> Any:
    # A fast hasher: HTTP Basic checks the password on every one of the requests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.FLOWS_PUBLISH_EXCHANGES = ["fuzz.*"]
    return settings
