"""Selectors for the overview: what the broker says about itself, or why it cannot say."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from django.core.cache import cache

from flows.broker.errors import BrokerError
from flows.broker.management_api import ManagementClient, Overview, Vhost
from flows.runtime import runtime
from flows.shared_store import SharedStoreDown, reaching_store

VHOST_NAMES_CACHE_KEY = "flows.vhost-names"
VHOST_NAMES_CACHE_SECONDS = 5


@dataclass(frozen=True)
class BrokerStatus:
    """Either the broker's overview and vhosts, or the reason they could not be read."""

    overview: Overview | None = None
    vhosts: list[Vhost] = field(default_factory=list)
    error: str | None = None
    api_where: str = ""

    @property
    def reachable(self) -> bool:
        return self.error is None


def broker_status(*, client: ManagementClient | None = None) -> BrokerStatus:
    """Ask the management API for the overview and vhosts. Never raises for broker trouble.

    Nothing is cached here: each call asks afresh, so the page recovers as soon as the
    broker answers again.
    """
    client = client or runtime().management_client
    try:
        overview = client.overview()
        vhosts = client.vhosts()
    except BrokerError as exc:
        return BrokerStatus(error=exc.message, api_where=client.where)
    _remember_names([vhost.name for vhost in vhosts])
    return BrokerStatus(overview=overview, vhosts=vhosts, api_where=client.where)


def vhost_names(*, client: ManagementClient | None = None) -> list[str]:
    """Vhost names for the selector in every page's header; cached briefly, [] when unknown."""
    names = None
    # A cache that does not answer (Redis down) is a miss: every page still renders.
    with contextlib.suppress(SharedStoreDown), reaching_store("asked afresh"):
        names = cache.get(VHOST_NAMES_CACHE_KEY)
    if names is not None:
        return names
    client = client or runtime().management_client
    try:
        names = [vhost.name for vhost in client.vhosts()]
    except BrokerError:
        names = []
    _remember_names(names)
    return names


def _remember_names(names: list[str]) -> None:
    with contextlib.suppress(SharedStoreDown), reaching_store("not remembered"):
        cache.set(VHOST_NAMES_CACHE_KEY, names, VHOST_NAMES_CACHE_SECONDS)
