"""The user's own Start and Stop buttons (on the landing page)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from boxes import docker_engine, lifecycle
from boxes.models import Box

STOPPED_BY_YOU = "stopped by you"


@login_required
@require_POST
def start(request):
    try:
        lifecycle.ensure_box(request.user)
        messages.success(request, "Your box is running.")
    except (docker_engine.EngineError, lifecycle.BoxError) as exc:
        messages.error(request, f"Your box could not start: {exc}")
    return redirect("home")


@login_required
@require_POST
def stop(request):
    box = Box.objects.filter(user=request.user).first()
    if box is not None:
        try:
            lifecycle.stop_box(box, reason=STOPPED_BY_YOU)
            messages.success(request, "Your box is stopped; your home is kept.")
        except (docker_engine.EngineError, lifecycle.BoxError) as exc:
            messages.error(request, f"Your box could not stop: {exc}")
    return redirect("home")
