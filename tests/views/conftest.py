"""Fixtures of the publish views: a user allowed to publish, and a test client signed in as it."""

from __future__ import annotations

import pytest

from tests.support.publishing import grant_publish


@pytest.fixture
def publisher_user(django_user_model):
    user = django_user_model.objects.create_user(username="pub", password="pw-for-tests-1")
    grant_publish(user)
    return user


@pytest.fixture
def api(client, publisher_user):
    """A test client signed in as a user allowed to publish; `.post_json(data)`."""
    client.force_login(publisher_user)

    def post_json(data, path="/api/publish"):
        import json

        return client.post(path, data=json.dumps(data), content_type="application/json")

    client.post_json = post_json
    return client
