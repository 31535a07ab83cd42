from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, render

from spoon.json_api import api, error
from workspaces import access
from workspaces.models import Workspace


@login_required
def terminal(request, workspace_id=None):
    workspace = None
    if workspace_id is not None:
        workspace = get_object_or_404(Workspace, pk=workspace_id, user=request.user)
    return render(request, "terminal/terminal.html", {"workspace": workspace, "nav": "terminal"})


@login_required
def user_terminal(request, user_id):
    """Staff with the permission open another user's terminal (from the admin)."""
    owner = get_object_or_404(get_user_model(), pk=user_id)
    if not access.may_open(request.user, owner):
        raise Http404
    return render(request, "terminal/terminal.html", {"owner": owner, "nav": "terminal"})


@api(["POST"])
def issue_ticket(request):
    """A ticket for the terminal socket: the user's own box, a workspace of
    theirs, or (staff with the permission) another user's box. Whatever the
    asker may not open answers as a missing one does."""
    owner, workspace = request.user, None
    if request.POST.get("owner"):
        owner = get_user_model().objects.filter(pk=_number(request.POST["owner"])).first()
        if owner is None or not access.may_open(request.user, owner):
            return error("No such user.", "owner", status=404)
    if request.POST.get("workspace"):
        found = Workspace.objects.filter(pk=_number(request.POST["workspace"]), user=owner)
        workspace = found.first()
        if workspace is None:
            return error("No such workspace.", "workspace", status=404)
    typing = request.POST.get("typing") == "yes"
    ticket = access.issue(request.user, owner=owner, workspace=workspace, typing=typing)
    return JsonResponse(access.offer(ticket, "terminal-socket"))


def _number(text: str) -> int:
    """An id typed as ASCII digits (as many as an id can have), else one no row has."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else -1
