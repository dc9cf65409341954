"""Names of the broker objects the dashboard itself creates (tap queues and the like).

Everything the dashboard declares on a broker starts with this prefix, so pages can hide
it by default and a person reading the management UI can tell whose it is.
"""

DASHBOARD_OBJECT_PREFIX = "flows-dashboard."


def dashboard_object_name(kind: str, unique: str) -> str:
    """`flows-dashboard.<kind>.<unique>`, e.g. `flows-dashboard.tap.3f2a…`."""
    return f"{DASHBOARD_OBJECT_PREFIX}{kind}.{unique}"


def is_dashboard_object(name: str) -> bool:
    return name.startswith(DASHBOARD_OBJECT_PREFIX)
