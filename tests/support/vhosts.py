"""Scratch vhosts the dashboard may use, and a name hostile to URLs and markup."""

from __future__ import annotations

from flows.broker.management_api import ManagementClient
from tests.support.accounts import dashboard_users
from tests.support.broker_admin import create_vhost_for

HOSTILE = "a/b%2F<c>"
# A name that runs a script where a page puts it into markup unescaped.
SCRIPT = "<script>window.__pwned=1</script>"


def make_vhost(client: ManagementClient, name: str) -> str:
    return create_vhost_for(client, name, dashboard_users())
