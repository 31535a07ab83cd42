from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from boxes import views as box_views
from spoon import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("box/start", box_views.start, name="box-start"),
    path("box/stop", box_views.stop, name="box-stop"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("terminal/", include("terminal.urls")),
    path("settings/", include("dotfiles.urls")),
    path("settings/", include("ssh.urls")),
    path("api/ssh-keys/", include("ssh.api_urls")),
    path("api/dotfiles/", include("dotfiles.api_urls")),
    path("previews/", include("previews.urls")),
    path("api/previews/", include("previews.api_urls")),
    path("", include("workspaces.urls")),
    path("admin/", admin.site.urls),
    # WebSockets, served by terminal.routing and workspaces.routing; named
    # here so that ticket endpoints build their URLs alike (access.offer).
    path("ws/terminal/", views.not_http, name="terminal-socket"),
    path("ws/runs/<id:run_id>/", views.not_http, name="run-socket"),
]

handler404 = "spoon.views.not_found"
handler500 = "spoon.views.server_error"
