# WebSocket routes; spoon/asgi.py puts them behind the Origin check and auth.
from django.urls import path

from terminal.consumer import TerminalConsumer

websocket_urlpatterns = [path("ws/terminal/", TerminalConsumer.as_asgi())]
