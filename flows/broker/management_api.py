"""Client for the RabbitMQ management HTTP API (plugin `rabbitmq_management`, port 15672).

Every read of the broker's state and every administrative change (vhosts, permissions,
tracing) goes through `ManagementClient`. Responses are parsed tolerantly: field shapes
differ between RabbitMQ versions, so typed results read with defaults, never by indexing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping
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
    """A thread-safe client for one management API endpoint."""

    def __init__(
        self, base_url: str, username: str, password: str, *, timeout: float = 3.0
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.username = username
        self.where = host_and_port(self.base_url, default_port=15672)
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=(username, password),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
            headers={"Accept": "application/json"},
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
    ) -> Any:
        """Send one request; return the decoded JSON (None if empty), or raise BrokerError."""
        try:
            response = self._http.request(method, path, params=params, json=json)
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

    def iter_pages(
        self, path: str, *, params: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield every item of a list endpoint, 500 at a time where the endpoint pages.

        Endpoints without paging (bindings, consumers) ignore the page parameters and
        return a plain list, which is yielded as is.
        """
        page = 1
        while True:
            query = {**(params or {}), "page": page, "page_size": MAX_PAGE_SIZE}
            data = self.get(path, params=query)
            if isinstance(data, list):
                yield from (item for item in data if isinstance(item, dict))
                return
            if not isinstance(data, dict):
                return
            yield from (item for item in data.get("items", []) if isinstance(item, dict))
            page_count = _int_or_none(data.get("page_count")) or 1
            if page >= page_count:
                return
            page += 1

    def get_all(self, path: str, *, params: Mapping[str, Any] | None = None) -> list[dict]:
        return list(self.iter_pages(path, params=params))

    # --- typed operations -------------------------------------------------------------------

    def overview(self) -> Overview:
        data = self.get(api_path("overview"))
        if not isinstance(data, dict):
            raise self._not_the_api()
        return parse_overview(data)

    def vhosts(self) -> list[Vhost]:
        return sorted(
            (parse_vhost(item) for item in self.get_all(api_path("vhosts"))),
            key=lambda vhost: vhost.name,
        )

    def vhost(self, name: str) -> Vhost:
        data = self.get(api_path("vhosts", name))
        return parse_vhost(data if isinstance(data, dict) else {})

    def create_vhost(self, name: str, *, description: str = "") -> None:
        self.put(api_path("vhosts", name), json={"description": description})

    def delete_vhost(self, name: str) -> None:
        self.delete(api_path("vhosts", name))

    def set_tracing(self, vhost: str, *, enabled: bool) -> None:
        self.put(api_path("vhosts", vhost), json={"tracing": enabled})

    def set_permissions(
        self,
        vhost: str,
        user: str,
        *,
        configure: str = ".*",
        write: str = ".*",
        read: str = ".*",
    ) -> None:
        self.put(
            api_path("permissions", vhost, user),
            json={"configure": configure, "write": write, "read": read},
        )

    def whoami(self) -> dict[str, Any]:
        data = self.get(api_path("whoami"))
        return data if isinstance(data, dict) else {}

    # --- declaring and removing what a demo scenario loads (flows/demo/loading.py) ----------

    def declare_vhost(self, name: str, *, description: str = "") -> None:
        self.put(api_path("vhosts", name), json={"description": description})

    def remove_vhost(self, name: str) -> None:
        self.delete(api_path("vhosts", name))

    def user_permissions(self, vhost: str, user: str) -> dict[str, Any] | None:
        """The user's permissions on the vhost, None if it has none."""
        try:
            data = self.get(api_path("permissions", vhost, user))
        except BrokerNotFound:
            return None
        return data if isinstance(data, dict) else None

    def grant_permissions(
        self,
        vhost: str,
        user: str,
        *,
        configure: str = ".*",
        write: str = ".*",
        read: str = ".*",
    ) -> None:
        self.put(
            api_path("permissions", vhost, user),
            json={"configure": configure, "write": write, "read": read},
        )

    def revoke_permissions(self, vhost: str, user: str) -> None:
        self.delete(api_path("permissions", vhost, user))

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
        self.put(
            api_path("exchanges", vhost, name),
            json={
                "type": exchange_type,
                "durable": durable,
                "auto_delete": auto_delete,
                "internal": internal,
                "arguments": dict(arguments or {}),
            },
        )

    def remove_exchange(self, vhost: str, name: str) -> None:
        self.delete(api_path("exchanges", vhost, name))

    def declare_queue(
        self,
        vhost: str,
        name: str,
        *,
        durable: bool = True,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        self.put(
            api_path("queues", vhost, name),
            json={
                "durable": durable,
                "auto_delete": auto_delete,
                "arguments": dict(arguments or {}),
            },
        )

    def remove_queue(self, vhost: str, name: str) -> None:
        self.delete(api_path("queues", vhost, name))

    @staticmethod
    def _binding_path(
        vhost: str, source: str, destination: str, destination_type: str, *rest: str
    ) -> str:
        kind = "q" if destination_type == "queue" else "e"
        return api_path("bindings", vhost, "e", source, kind, destination, *rest)

    def bindings_between(
        self, vhost: str, source: str, destination: str, *, destination_type: str = "queue"
    ) -> list[dict[str, Any]]:
        """The bindings from exchange `source` to the queue (or exchange) `destination`."""
        data = self.get(self._binding_path(vhost, source, destination, destination_type))
        return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []

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
        self.request(
            "POST",
            self._binding_path(vhost, source, destination, destination_type),
            json={"routing_key": routing_key, "arguments": dict(arguments or {})},
        )

    def unbind(
        self,
        vhost: str,
        source: str,
        destination: str,
        *,
        destination_type: str = "queue",
        properties_key: str,
    ) -> None:
        """Remove one binding, named by the `properties_key` the API lists it with."""
        self.delete(
            self._binding_path(vhost, source, destination, destination_type, properties_key)
        )


@functools.cache
def get_management_client() -> ManagementClient:
    """The process-wide client built from settings (RABBITMQ_API_URL and credentials)."""
    from django.conf import settings

    return ManagementClient(
        settings.RABBITMQ_API_URL,
        settings.RABBITMQ_API_USER,
        settings.RABBITMQ_API_PASSWORD,
        timeout=settings.RABBITMQ_API_TIMEOUT,
    )


def reset_management_client() -> None:
    """Close the process-wide client and forget it, so the next call reads settings again.

    Closing matters: a dropped client would leave its pooled sockets to the garbage collector.
    """
    if get_management_client.cache_info().currsize:
        get_management_client().close()
    get_management_client.cache_clear()


__all__ = [
    "BrokerError",
    "ManagementClient",
    "Overview",
    "Vhost",
    "api_path",
    "get_management_client",
    "reset_management_client",
]
