"""Celery task messages recognised by their shape, whatever serializer wrote the body.

Protocol 2 (Celery 4 and later; docs.celeryq.dev, "Message Protocol") puts the task's
metadata in headers: `task` (its name), `id`, `retries`, `eta`, `expires`, `root_id`,
`parent_id`, `group`, `origin`, `argsrepr`, `kwargsrepr`, `lang`, `timelimit`, ..., and the
body is `[args, kwargs, {"callbacks", "errbacks", "chain", "chord"}]`. Protocol 1 has no
such headers: the body is a dict with `task`, `id`, `args`, `kwargs`, `retries`, `eta`, ...
The task id is also the `correlation_id` property.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flows.decoding.result import CeleryTask
from flows.decoding.values import plain

# Header fields (protocol 2) and body fields (protocol 1) shown in their own rows.
_MAIN = ("retries", "eta", "expires", "parent_id", "root_id", "group", "origin")
_PROTOCOL_2_EXTRA = (
    "lang", "shadow", "timelimit", "group_index", "ignore_result",
    "replaced_task_nesting", "stamped_headers", "stamps", "compression",
)  # fmt: skip
_PROTOCOL_1_EXTRA = (
    "utc", "callbacks", "errbacks", "timelimit", "taskset", "chord", "chain", "group_index",
)  # fmt: skip
_EMBED = ("callbacks", "errbacks", "chain", "chord")


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def is_protocol_2(headers: Mapping[str, Any]) -> bool:
    return _is_text(headers.get("task")) and _is_text(headers.get("id"))


def celery_task(
    headers: Mapping[str, Any],
    body: Any,
    *,
    body_read: bool,
    show: Callable[[Any], str],
) -> CeleryTask | None:
    """The task `headers` and the decoded `body` describe, or None when they are no task.

    `body_read` is False when the body could not be decoded (protocol 2 still names the
    task from its headers, and its `argsrepr`/`kwargsrepr`); `show` writes args and kwargs
    for a person, in the body's own notation.
    """
    if is_protocol_2(headers):
        return _protocol_2(headers, body, body_read=body_read, show=show)
    if body_read and isinstance(body, Mapping):
        return _protocol_1(body, show=show)
    return None


def _protocol_2(
    headers: Mapping[str, Any], body: Any, *, body_read: bool, show: Callable[[Any], str]
) -> CeleryTask:
    notes: list[str] = []
    args: Any = None
    kwargs: Any = None
    embed: Any = None
    if (
        body_read
        and isinstance(body, Sequence)
        and not isinstance(body, str | bytes)
        and len(body) == 3
    ):
        args, kwargs, embed = body
    elif body_read:
        notes.append("the body is not [args, kwargs, embed] as protocol 2 has it")
    if args is None and kwargs is None:
        args_text = _repr_header(headers, "argsrepr")
        kwargs_text = _repr_header(headers, "kwargsrepr")
        if args_text or kwargs_text:
            notes.append("args and kwargs as the argsrepr and kwargsrepr headers give them")
    else:
        args_text, kwargs_text = show(args), show(kwargs)
    extra = {name: plain(headers[name]) for name in _PROTOCOL_2_EXTRA if name in headers}
    if isinstance(embed, Mapping):
        extra.update({name: plain(embed[name]) for name in _EMBED if embed.get(name) is not None})
    return CeleryTask(
        protocol=2,
        task=str(headers["task"]),
        id=str(headers["id"]),
        args=plain(args),
        kwargs=plain(kwargs),
        args_text=args_text,
        kwargs_text=kwargs_text,
        **{name: plain(headers.get(name)) for name in _MAIN},
        extra=extra,
        notes=tuple(notes),
    )


def _protocol_1(body: Mapping[Any, Any], *, show: Callable[[Any], str]) -> CeleryTask | None:
    if not (_is_text(body.get("task")) and _is_text(body.get("id"))):
        return None
    if "args" not in body and "kwargs" not in body:
        return None
    args, kwargs = body.get("args"), body.get("kwargs")
    return CeleryTask(
        protocol=1,
        task=str(body["task"]),
        id=str(body["id"]),
        args=plain(args),
        kwargs=plain(kwargs),
        args_text=show(args),
        kwargs_text=show(kwargs),
        **{name: plain(body.get(name)) for name in _MAIN},
        extra={name: plain(body[name]) for name in _PROTOCOL_1_EXTRA if name in body},
    )


def _repr_header(headers: Mapping[str, Any], name: str) -> str:
    value = headers.get(name)
    return value if isinstance(value, str) else ""
