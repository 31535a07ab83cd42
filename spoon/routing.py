"""Where HTTP and WebSocket requests go: the ASGI application, without the
duties of a serving process (spoon.asgi adds those)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spoon.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from previews.proxy import PreviewHosts  # noqa: E402
from spoon.websockets import NoSuchSocket, SameOriginOnly  # noqa: E402
from terminal.routing import websocket_urlpatterns as terminal_routes  # noqa: E402
from workspaces.routing import websocket_urlpatterns as run_routes  # noqa: E402

# Preview hosts (<port>--<box>.<SPOON_PREVIEW_DOMAIN>) go to the box, before
# anything of Spoon's sees them.
application = PreviewHosts(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": SameOriginOnly(
                AuthMiddlewareStack(
                    URLRouter([*terminal_routes, *run_routes, re_path("", NoSuchSocket.as_asgi())])
                )
            ),
        }
    )
)
