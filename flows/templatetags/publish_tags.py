"""Template helpers for the publish page."""

from __future__ import annotations

from typing import Any

from django import template

from flows.topology.records import exchange_label as _exchange_label

register = template.Library()


@register.filter
def exchange_label(name: str) -> str:
    """An exchange's name as shown, with the one label for the default exchange ("")."""
    return _exchange_label(name or "")


@register.filter
def get_field(mapping: Any, name: str) -> Any:
    """`mapping[name]`, or "" when absent or None (field values and field errors)."""
    if not isinstance(mapping, dict):
        return ""
    value = mapping.get(name)
    return "" if value is None else value
