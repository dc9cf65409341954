"""Client for the RabbitMQ management HTTP API (plugin `rabbitmq_management`, port 15672).

Every read of the broker's state and every change the dashboard makes through the API
(tracing) goes through `ManagementClient`, whose methods are the only place a management-API
path is built. Responses are parsed tolerantly: field shapes differ between RabbitMQ
versions, so typed results read with defaults, never by indexing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from flows.broker.errors import (
    BrokerAuthFailed,
    BrokerError,
    BrokerNotFound,
    BrokerRefused,
    BrokerUnreachable,
    ManagementPluginMissing,
)
from flows.broker.redact import host_and_port

LOGGER = logging.getLogger(__name__)

# The API refuses larger pages.
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class Overview:
    """What `/api/overview` says about the broker, as far as this version reports it."""

    rabbitmq_version: str
    erlang_version: str
    management_version: str
    product_name: str
    cluster_name: str
    node: str


@dataclass(frozen=True)
class Vhost:
    name: str
    description: str
    tracing: bool
    messages: int | None


def _text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_overview(data: Mapping[str, Any]) -> Overview:
    return Overview(
        rabbitmq_version=_text(data.get("rabbitmq_version"), "unknown"),
        erlang_version=_text(data.get("erlang_version"), "unknown"),
        management_version=_text(data.get("management_version"), "unknown"),
        product_name=_text(data.get("product_name"), "RabbitMQ"),
        cluster_name=_text(data.get("cluster_name")),
        node=_text(data.get("node"), "unknown"),
    )


def parse_vhost(data: Mapping[str, Any]) -> Vhost:
    return Vhost(
        name=_text(data.get("name")),
        description=_text(data.get("description")),
        tracing=data.get("tracing") is True,
        messages=_int_or_none(data.get("messages")),
    )


def api_path(*segments: str) -> str:
    """Build `api/<seg>/<seg>` with every segment percent-encoded, `/` included.

    Vhost `/` becomes `%2F`, and a queue named `a/b%2F<c>` stays one segment.
    """
    return "api/" + "/".join(quote(segment, safe="") for segment in segments)


class ManagementClient:
    """A thread-safe client for one management API endpoint.

    `list_timeout` (default: `timeout`) bounds the wait for a list: the broker takes seconds
    to list a vhost of thousands of queues and bindings, past the short timeout that makes an
    unreachable broker show quickly. Connecting always times out within 2 s, so a broker that
    is down is still reported at once.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 3.0,
        list_timeout: float | None = None,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.username = username
        self.where = host_and_port(self.base_url, default_port=15672)
        connect = min(timeout, 2.0)
        self._list_timeout = httpx.Timeout(max(timeout, list_timeout or 0.0), connect=connect)
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=(username, password),
            timeout=httpx.Timeout(timeout, connect=connect),
            headers={"Accept": "application/json"},
        )

    @classmethod
    def from_settings(cls) -> ManagementClient:
        """The client the settings describe (RABBITMQ_API_URL, its credentials and timeouts)."""
        from django.conf import settings

        return cls(
            settings.RABBITMQ_API_URL,
            settings.RABBITMQ_API_USER,
            settings.RABBITMQ_API_PASSWORD,
            timeout=settings.RABBITMQ_API_TIMEOUT,
            list_timeout=settings.RABBITMQ_API_LIST_TIMEOUT,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ManagementClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- transport --------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        timeout: httpx.Timeout | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON (None if empty), or raise BrokerError."""
        try:
            response = self._http.request(
                method,
                path,
                params=params,
                json=json,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise BrokerUnreachable(f"RabbitMQ management API unreachable at {self.where}") from exc
        except httpx.TimeoutException as exc:
            raise BrokerUnreachable(
                f"RabbitMQ management API at {self.where} did not answer in time"
            ) from exc
        except httpx.HTTPError as exc:
            # Something answered, but not in HTTP: the AMQP port, or another service.
            raise self._not_the_api() from exc
        return self._decode(response)

    def _not_the_api(self) -> ManagementPluginMissing:
        return ManagementPluginMissing(
            f"Something answers at {self.where}, but not the RabbitMQ management API "
            "(is the rabbitmq_management plugin enabled?)"
        )

    def _decode(self, response: httpx.Response) -> Any:
        body: Any = None
        is_json = "json" in response.headers.get("content-type", "")
        if response.content and is_json:
            try:
                body = response.json()
            except ValueError as exc:
                raise self._not_the_api() from exc
        status = response.status_code
        if 200 <= status < 300:
            if response.content and not is_json:
                raise self._not_the_api()
            return body
        reason = ""
        if isinstance(body, dict):
            reason = _text(body.get("reason")) or _text(body.get("error"))
        if status == 401:
            raise BrokerAuthFailed(
                f"RabbitMQ management API at {self.where} refused user {self.username!r}"
                + (f": {reason}" if reason else "")
            )
        if status == 404:
            if not isinstance(body, dict):
                raise self._not_the_api()
            raise BrokerNotFound(f"Not found on the broker: {response.request.url.path}")
        LOGGER.warning(
            "management API %s %s: %s %s",
            response.request.method,
            response.request.url.path,
            status,
            reason,
        )
        raise BrokerRefused(
            f"RabbitMQ management API at {self.where} refused the request ({status})"
            + (f": {reason}" if reason else ""),
            status=status,
        )

    def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def put(self, path: str, *, json: Any = None) -> Any:
        return self.request("PUT", path, json=json if json is not None else {})

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    # --- lists ------------------------------------------------------------------------------

    def _list(
        self, path: str, *, params: Mapping[str, Any] | None = None, patient: bool = True
    ) -> list[dict[str, Any]]:
        """Every item of a list endpoint, 500 a page, the pages after the first in parallel.

        The broker builds the whole list for each page it serves, so ten pages one after the
        other cost ten times the wait; in parallel, about one. Endpoints that do not page
        (bindings, consumers) ignore the page parameters and answer with the whole list.
        `patient` lists wait up to the list timeout (a vhost's objects can be many).
        """
        timeout = self._list_timeout if patient else None

        def page(number: int) -> Any:
            query = {**(params or {}), "page": number, "page_size": MAX_PAGE_SIZE}
            return self.request("GET", path, params=query, timeout=timeout)

        first = page(1)
        if isinstance(first, list):
            return [item for item in first if isinstance(item, dict)]
        if not isinstance(first, dict):
            return []
        page_count = _int_or_none(first.get("page_count")) or 1
        pages = [first]
        if page_count > 1:
            with ThreadPoolExecutor(
                max_workers=min(4, page_count - 1), thread_name_prefix="management-pages"
            ) as pool:
                pages += pool.map(page, range(2, page_count + 1))
        items: dict[Any, dict[str, Any]] = {}
        for answer in pages:
            listed = answer.get("items", []) if isinstance(answer, dict) else []
            for item in listed:
                if isinstance(item, dict):
                    # An object that moved between two pages while they were read is kept once.
                    items[item["name"] if "name" in item else id(item)] = item
        return list(items.values())

    def _vhost_list(
        self,
        kind: str,
        vhost: str,
        *,
        columns: str | None = None,
        disable_stats: bool = False,
    ) -> list[dict[str, Any]]:
        """`/api/<kind>/<vhost>`: `columns` keeps only those fields, `disable_stats` skips the
        per-object statistics, which is most of the broker's cost on a large vhost."""
        params: dict[str, str] = {}
        if columns is not None:
            params["columns"] = columns
        if disable_stats:
            params["disable_stats"] = "true"
        return self._list(api_path(kind, vhost), params=params)

    def exchanges(
        self, vhost: str, *, columns: str | None = None, disable_stats: bool = False
    ) -> list[dict[str, Any]]:
        return self._vhost_list("exchanges", vhost, columns=columns, disable_stats=disable_stats)

    def queues(
        self, vhost: str, *, columns: str | None = None, disable_stats: bool = False
    ) -> list[dict[str, Any]]:
        return self._vhost_list("queues", vhost, columns=columns, disable_stats=disable_stats)

    def bindings(self, vhost: str, *, columns: str | None = None) -> list[dict[str, Any]]:
        return self._vhost_list("bindings", vhost, columns=columns)

    def consumers(self, vhost: str) -> list[dict[str, Any]]:
        return self._vhost_list("consumers", vhost)

    def policies(self, vhost: str) -> list[dict[str, Any]]:
        """The vhost's user policies (listing them needs the policymaker tag)."""
        return self._vhost_list("policies", vhost)

    def channels(self, vhost: str) -> list[dict[str, Any]]:
        return self._list(api_path("vhosts", vhost, "channels"))

    def connections(self, vhost: str | None = None) -> list[dict[str, Any]]:
        """The vhost's client connections, or every connection on the broker."""
        if vhost is None:
            return self._list(api_path("connections"))
        return self._list(api_path("vhosts", vhost, "connections"))

    # --- single objects ---------------------------------------------------------------------

    def overview(self) -> Overview:
        data = self.get(api_path("overview"))
        if not isinstance(data, dict):
            raise self._not_the_api()
        return parse_overview(data)

    def running_nodes(self) -> list[str]:
        """The names of the broker's running nodes: one, unless it is a cluster."""
        data = self.get(api_path("nodes"), params={"columns": "name,running"})
        items = data if isinstance(data, list) else []
        return sorted(str(item.get("name")) for item in items if item.get("running"))

    def vhosts(self) -> list[Vhost]:
        return sorted(
            # Every page's header lists the vhosts: a hung broker must not hold it for long.
            (parse_vhost(item) for item in self._list(api_path("vhosts"), patient=False)),
            key=lambda vhost: vhost.name,
        )

    def vhost(self, name: str) -> Vhost:
        data = self.get(api_path("vhosts", name))
        return parse_vhost(data if isinstance(data, dict) else {})

    def queue(self, vhost: str, name: str) -> dict[str, Any]:
        """One queue's details as the API reports them (depth, consumers, arguments...)."""
        data = self.get(api_path("queues", vhost, name))
        return data if isinstance(data, dict) else {}

    # --- tracing (the firehose) -------------------------------------------------------------

    def set_tracing(self, vhost: str, *, enabled: bool) -> None:
        """Switch the vhost's tracing; `BrokerNotFound` when it does not exist. Never creates
        it: the API's PUT would (a tap stopping after its vhost was deleted brought the vhost
        back, on someone's broker)."""
        self.vhost(vhost)
        self.put(api_path("vhosts", vhost), json={"tracing": enabled})

    # --- declaring and removing what a demo scenario loads (flows/demo/loading.py) ----------

    def declare_vhost(self, name: str, *, description: str = "") -> None:
        self.put(api_path("vhosts", name), json={"description": description})

    def remove_vhost(self, name: str) -> None:
        self.delete(api_path("vhosts", name))

    def user_permissions(self, vhost: str, user: str) -> dict[str, Any] | None:
        """The user's permissions on the vhost, None if it has none."""
        return self._find(api_path("permissions", vhost, user))

    def grant_permissions(
        self, vhost: str, user: str, *, configure: str = ".*", write: str = ".*", read: str = ".*"
    ) -> None:
        body = {"configure": configure, "write": write, "read": read}
        self._declare("permissions", vhost, user, body)

    def revoke_permissions(self, vhost: str, user: str) -> None:
        self._remove("permissions", vhost, user)

    def find_exchange(self, vhost: str, name: str) -> dict[str, Any] | None:
        """One exchange as the API reports it, None if the vhost has none of that name."""
        return self._find(api_path("exchanges", vhost, name))

    def find_queue(self, vhost: str, name: str) -> dict[str, Any] | None:
        """One queue as the API reports it, None if the vhost has none of that name."""
        return self._find(api_path("queues", vhost, name))

    def _find(self, path: str) -> dict[str, Any] | None:
        try:
            data = self.get(path)
        except BrokerNotFound:
            return None
        return data if isinstance(data, dict) else None

    def declare_exchange(
        self,
        vhost: str,
        name: str,
        *,
        exchange_type: str,
        durable: bool = True,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        flags = {"durable": durable, "auto_delete": auto_delete, "internal": internal}
        body = {"type": exchange_type, **flags, "arguments": dict(arguments or {})}
        self._declare("exchanges", vhost, name, body)

    def remove_exchange(self, vhost: str, name: str) -> None:
        self._remove("exchanges", vhost, name)

    def declare_queue(
        self,
        vhost: str,
        name: str,
        *,
        durable: bool = True,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        body = {"durable": durable, "auto_delete": auto_delete, "arguments": dict(arguments or {})}
        self._declare("queues", vhost, name, body)

    def remove_queue(self, vhost: str, name: str) -> None:
        self._remove("queues", vhost, name)

    # A vhost's named resources (exchanges, queues, a user's permissions) are declared with a
    # PUT of their settings and removed with a DELETE, at the same path.
    def _declare(self, kind: str, vhost: str, name: str, body: dict[str, Any]) -> None:
        self.put(api_path(kind, vhost, name), json=body)

    def _remove(self, kind: str, vhost: str, name: str) -> None:
        self.delete(api_path(kind, vhost, name))

    def bind(
        self,
        vhost: str,
        source: str,
        destination: str,
        *,
        destination_type: str = "queue",
        routing_key: str = "",
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        kind = "q" if destination_type == "queue" else "e"
        self.request(
            "POST",
            api_path("bindings", vhost, "e", source, kind, destination),
            json={"routing_key": routing_key, "arguments": dict(arguments or {})},
        )


__all__ = [
    "BrokerError",
    "ManagementClient",
    "Overview",
    "Vhost",
    "api_path",
]
