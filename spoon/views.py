import hmac

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import csrf, defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from boxes import audit, health
from boxes.status import status_of
from spoon import health as spoon_health
from spoon import metrics as spoon_metrics
from spoon.json_api import error, is_json_path
from workspaces.models import Run, Workspace


@require_GET
@never_cache
def healthz(request):
    """ok or not, for anyone (a load balancer); what is wrong, for staff and
    whoever has SPOON_METRICS_TOKEN only: versions and error texts tell an
    attacker what to try."""
    docker = health.engine_status()
    database = spoon_health.database_status()
    channel_layer = spoon_health.channel_layer_status()
    ok = health.is_ok(docker) and database["ok"] and channel_layer["ok"]
    answer = {"ok": ok}
    if request.user.is_staff or _has_metrics_token(request):
        answer |= {"docker": docker, "database": database, "channel_layer": channel_layer}
    return JsonResponse(answer, status=200 if ok else 503)


@require_GET
@never_cache
def metrics(request):
    """Prometheus' page, for whoever has SPOON_METRICS_TOKEN; none without one."""
    if not settings.SPOON_METRICS_TOKEN:
        return HttpResponse("No metrics: SPOON_METRICS_TOKEN is not set.\n", status=404,
                            content_type="text/plain")  # fmt: skip
    if not _has_metrics_token(request):
        answer = HttpResponse(
            "Send Authorization: Bearer <SPOON_METRICS_TOKEN>.\n",
            status=401,
            content_type="text/plain",
        )
        answer["WWW-Authenticate"] = 'Bearer realm="spoon metrics"'
        return answer
    body, content_type = spoon_metrics.exposition(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)


def _has_metrics_token(request) -> bool:
    token = settings.SPOON_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@login_required
def home(request):
    """The user's box first, then their workspaces and latest runs; the
    engine's details are for staff."""
    user = request.user
    context = {
        "box": status_of(user),
        "idle_minutes": round(settings.SPOON_BOX_IDLE_SECONDS / 60),
        "workspaces": Workspace.objects.filter(user=user).order_by("spoon", "branch"),
        "runs": Run.objects.filter(workspace__user=user).select_related("workspace", "agent")[:8],
        "staff_actions": audit.affecting(user),
        "docker": health.engine_status() if user.is_staff else None,
    }
    return render(request, "home.html", context)


class LogoutView(auth_views.LogoutView):
    """Logging out is a POST; a GET (a typed or bookmarked URL) asks first."""

    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        return render(request, "registration/logout_confirm.html")


def locked_out(request, original_response=None, credentials=None):
    """What a login refused by django-axes answers (AXES_LOCKOUT_CALLABLE)."""
    context = {
        "limit": settings.AXES_FAILURE_LIMIT,
        "minutes": round(settings.AXES_COOLOFF_TIME.total_seconds() / 60),
    }
    return render(request, "registration/locked_out.html", context, status=429)


def not_http(request, **route):
    return HttpResponse("This address takes WebSocket connections only.", status=426)


# Errors Django answers itself: JSON where the path is a JSON endpoint's.


def not_found(request, exception=None):
    if is_json_path(request.path):
        return error("Not found: there is no such thing here.", status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if is_json_path(request.path):
        return error("Spoon failed to answer; the reason is in its log.", status=500)
    return defaults.server_error(request)


def csrf_failure(request, reason=""):
    if is_json_path(request.path):
        return error("The request's CSRF token is missing or stale: reload the page.", status=403)
    return csrf.csrf_failure(request, reason)
