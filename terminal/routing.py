# WebSocket routes; spoon/asgi.py puts them behind the Origin check and auth.
websocket_urlpatterns: list = []
