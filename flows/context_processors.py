from django.http import HttpRequest

from flows.broker_status import vhost_names
from flows.vhosts import selected_vhost


def vhost_selection(request: HttpRequest) -> dict[str, object]:
    """The selected vhost and the choices, for the selector every page's header shows."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    vhost = selected_vhost(request)
    names = vhost_names()
    if vhost not in names:
        names = [vhost, *names]
    return {"vhost": vhost, "vhost_choices": names}
