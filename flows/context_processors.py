from django.http import HttpRequest

from flows import access
from flows.access import Action
from flows.broker_status import vhost_names
from flows.vhosts import selected_vhost


def vhost_selection(request: HttpRequest) -> dict[str, object]:
    """The selected vhost and the choices (those the user may see), for every page's header."""
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated or not access.can(user, Action.VIEW):
        return {}
    vhost = selected_vhost(request)
    names = access.allowed_vhosts(user, vhost_names())
    if vhost not in names and access.vhost_allowed(user, vhost):
        names = [vhost, *names]
    return {"vhost": vhost, "vhost_choices": names}


def access_context(request: HttpRequest) -> dict[str, object]:
    """What the header says: read-only mode, and which links this user gets."""
    user = getattr(request, "user", None)
    return {
        "read_only": access.read_only(),
        "read_only_reason": access.READ_ONLY,
        "can_view": access.can(user, Action.VIEW),
        "can_view_audit": access.can(user, Action.VIEW_AUDIT),
    }


def recording_context(request: HttpRequest) -> dict[str, object]:
    """The recordings running on the selected vhost: every viewer is told it is recorded."""
    from flows.recording import store

    user = getattr(request, "user", None)
    if not user or not user.is_authenticated or not access.can(user, Action.VIEW):
        return {}
    vhost = selected_vhost(request)
    if not access.vhost_allowed(user, vhost):
        return {}
    return {
        "recordings_running": list(store.running(vhost)),
        "can_record": access.can(user, Action.RECORD, vhost),
    }
