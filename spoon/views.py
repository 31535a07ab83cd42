from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from boxes import health


@require_GET
@never_cache
def healthz(request):
    docker = health.engine_status()
    ok = health.is_ok(docker)
    return JsonResponse({"ok": ok, "docker": docker}, status=200 if ok else 503)


@login_required
def home(request):
    return render(request, "home.html", {"docker": health.engine_status()})


class LogoutView(auth_views.LogoutView):
    """Logging out is a POST; a GET (a typed or bookmarked URL) asks first."""

    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        return render(request, "registration/logout_confirm.html")


def not_http(request):
    return HttpResponse("This address takes WebSocket connections only.", status=426)
