from django.urls import path

from workspaces import api, views

app_name = "workspaces"
urlpatterns = [
    path("workspaces/", views.workspace_list, name="list"),
    path("workspaces/<id:workspace_id>/", views.workspace_detail, name="detail"),
    path("workspaces/<id:workspace_id>/delete", views.workspace_delete, name="delete"),
    path("workspaces/<id:workspace_id>/image", views.workspace_image, name="image"),
    path("workspaces/<id:workspace_id>/agent", views.workspace_agent, name="agent"),
    path("api/workspaces/<id:workspace_id>/runs/", api.run_list, name="runs"),
    path("api/workspaces/<id:workspace_id>/runs/<id:run_id>", api.run_detail, name="run"),
    path("api/workspaces/<id:workspace_id>/runs/<id:run_id>/cancel", api.cancel, name="cancel"),
    path(
        "api/workspaces/<id:workspace_id>/runs/<id:run_id>/ticket",
        api.stream_ticket,
        name="stream-ticket",
    ),
]
