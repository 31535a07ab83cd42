from django.urls import path

from workspaces.consumer import RunStreamConsumer

websocket_urlpatterns = [path("ws/runs/<id:run_id>/", RunStreamConsumer.as_asgi())]
