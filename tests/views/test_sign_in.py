"""The sign-in page slows repeated failures down: after the free ones, even the right password
is refused (429, saying how long to wait) until the wait is over."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.support.accounts import TEST_PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_counts_left_over():
    cache.clear()
    yield
    cache.clear()


def sign_in(client, password: str, *, username: str = "alice", address: str = "10.1.2.3"):
    return client.post(
        "/accounts/login/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password=TEST_PASSWORD)


def test_after_five_failures_even_the_right_password_waits(client, alice, settings) -> None:
    assert settings.FLOWS_SIGN_IN_FREE_FAILURES == 5
    for _ in range(5):
        refused = sign_in(client, "wrong")
        assert refused.status_code == 200
        assert "Please enter a correct username and password" in refused.content.decode()
    throttled = sign_in(client, TEST_PASSWORD)
    assert throttled.status_code == 429
    assert "Too many failed sign-ins for this account from your address" in (
        throttled.content.decode()
    )
    assert "_auth_user_id" not in client.session
    # Another address, or another account, is not slowed down.
    assert sign_in(client, TEST_PASSWORD, address="10.9.9.9").status_code == 302


def test_a_success_before_the_limit_starts_the_count_again(client, alice) -> None:
    for _ in range(4):
        sign_in(client, "wrong")
    assert sign_in(client, TEST_PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        sign_in(client, "wrong")
    assert sign_in(client, TEST_PASSWORD).status_code == 302


def test_the_password_views_without_templates_are_not_served(client) -> None:
    assert client.get("/accounts/password_reset/").status_code == 404
