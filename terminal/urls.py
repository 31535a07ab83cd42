from django.urls import path

from terminal import views

app_name = "terminal"
urlpatterns = [
    path("", views.terminal, name="index"),
    path("<id:workspace_id>/", views.terminal, name="workspace"),
    path("user/<id:user_id>/", views.user_terminal, name="user"),
    path("tickets/", views.issue_ticket, name="tickets"),
]
