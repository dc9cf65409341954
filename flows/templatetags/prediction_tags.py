"""Template helpers for showing a routing prediction (`templates/flows/_prediction.html`)."""

from __future__ import annotations

from django import template

from flows.routing_rules.prediction import Prediction, route_summary

register = template.Library()

UNROUTABLE_PREFIX = "Unroutable: "


@register.filter
def route_sentence(prediction: Prediction) -> str:
    """The dry-run's one sentence (`/api/route`'s `summary`) without its "Unroutable: ",
    which the partial writes in bold instead."""
    if prediction.result is None:
        return prediction.unavailable or ""
    return route_summary(prediction.result).removeprefix(UNROUTABLE_PREFIX)
