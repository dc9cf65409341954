"""ASGI entry point: HTTP through Django, websockets through Channels.

The Django application is built before any consumer is imported, so models and
settings are ready when `flows.websockets.urls` loads. Served by daphne, the process's
runtime (taps, publishers, clients: `flows.runtime`) stops before the server shuts down,
on SIGTERM and SIGINT alike.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from flows.demo.service import start_demo_from_environment  # noqa: E402
from flows.runtime import stop_before_daphne_shuts_down  # noqa: E402
from flows.tap.manager import restore_tracing_left_by_dead_taps  # noqa: E402
from flows.websockets.backpressure import SocketBacklogMiddleware  # noqa: E402
from flows.websockets.origin import origin_checked  # noqa: E402
from flows.websockets.urls import websocket_urlpatterns  # noqa: E402

stop_before_daphne_shuts_down()
start_demo_from_environment()  # `serve --demo NAME`: its publishers and workers, at once
restore_tracing_left_by_dead_taps()  # a predecessor killed with the firehose on

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Outermost, while `send` is still daphne's: how far behind each reader is. Then the
        # origin (a foreign one is closed with 4003, `flows.websockets.origin`); the session
        # identifies the user, and each consumer closes an anonymous connection with 4401
        # (`flows.websockets.viewer`).
        "websocket": SocketBacklogMiddleware(
            origin_checked(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
