"""A decoded body with `FLOWS_MASK` applied, as the tap applies it to headers and JSON bodies.

The tap masks an event as it makes it (`flows.tap.events`), but a binary body (msgpack,
CBOR, pickle, protobuf, a compressed JSON body) has no names it can read there: they appear
only once a decoder reads the body, later, for a viewer. So whatever a decoder answers goes
through `mask_decoded` before it leaves the server: the decoded `value` and a Celery task's
args, kwargs and extra fields are masked by key at any depth, and what shows them as text is
written again from the masked values.

Two texts cannot be masked by key: a pickle's disassembly (every string in the pickle, in
order) and Celery's `argsrepr`/`kwargsrepr` headers (Python reprs). They are withheld, with a
note saying why, whenever they may hold a masked value. And the raw body holds what was
masked too (its hex dump shows strings; base64 is no mask): whatever shows a decoded body
that is `masked` withholds the raw one (`withheld_body`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from flows.decoding.result import CeleryTask, Decoded
from flows.masking import MASKED, Mask

WITHHELD_DISASSEMBLY = "pickle disassembly withheld: it holds values FLOWS_MASK hides"
WITHHELD_REPR = f"{MASKED} (withheld: may hold values FLOWS_MASK hides)"
MASKED_NOTE = "values named by FLOWS_MASK are masked"


WITHHELD_BODY_NOTE = "raw body withheld: it holds values FLOWS_MASK hides (see its decoded form)"


def withheld_body(body: Any) -> dict[str, Any]:
    """A tap event's `body` as sent beside a `masked` decoded form: its bytes left out."""
    size = body.get("size") if isinstance(body, dict) else None
    return {"preview": MASKED, "encoding": "text", "size": size, "truncated": False, "masked": True}


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _masked_task(task: CeleryTask, mask: Mask) -> CeleryTask:
    args, kwargs, extra = mask.value(task.args), mask.value(task.kwargs), mask.value(task.extra)
    changes: dict[str, Any] = {}
    if args is not task.args or kwargs is not task.kwargs or extra is not task.extra:
        changes.update(args=args, kwargs=kwargs, extra=extra)
        changes.update(args_text=_json_text(args), kwargs_text=_json_text(kwargs))
    elif task.args is None and task.kwargs is None:
        # The texts come from the argsrepr/kwargsrepr headers: reprs, with no names to match.
        for name in ("args_text", "kwargs_text"):
            if mask.may_hide_in(getattr(task, name)):
                changes[name] = WITHHELD_REPR
    return dataclasses.replace(task, **changes) if changes else task


def mask_decoded(decoded: Decoded, mask: Mask) -> Decoded:
    """`decoded` with every value `mask` hides replaced; `decoded` itself when none is."""
    if not mask:
        return decoded
    value = mask.value(decoded.value)
    task = _masked_task(decoded.celery, mask) if decoded.celery is not None else None
    value_masked = value is not decoded.value
    if not value_masked and task is decoded.celery:
        if decoded.disassembly and decoded.value is None and mask.may_hide_in(decoded.disassembly):
            # Not read as literals (it failed): only the raw strings say what it holds.
            return dataclasses.replace(decoded, disassembly=WITHHELD_DISASSEMBLY, masked=True)
        return decoded
    changes: dict[str, Any] = {
        "value": value,
        "celery": task,
        "notes": (*decoded.notes, MASKED_NOTE),
        "masked": True,
    }
    if value_masked:
        shown = value
        changes.update(
            render=lambda: json.dumps(shown, indent=2, ensure_ascii=False), text_is_json=True
        )
    if decoded.disassembly:
        changes["disassembly"] = WITHHELD_DISASSEMBLY
    return dataclasses.replace(decoded, **changes)
