from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

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


@require_POST
def issue_ticket(request):
    if not request.user.is_authenticated:
        return JsonResponse({"error": "log in first"}, status=401)
    owner, workspace = request.user, None
    if request.POST.get("owner"):
        owner = get_user_model().objects.filter(pk=_number(request.POST["owner"])).first()
        if owner is None:
            return JsonResponse({"error": "no such user"}, status=404)
    if request.POST.get("workspace"):
        workspace = Workspace.objects.filter(pk=_number(request.POST["workspace"])).first()
        if workspace is None:
            return JsonResponse({"error": "no such workspace"}, status=404)
    try:
        ticket = access.issue(request.user, owner=owner, workspace=workspace)
    except access.TicketRefused as refused:
        return JsonResponse({"error": str(refused)}, status=403)
    return JsonResponse(access.offer(ticket, "terminal-socket"))


def _number(text: str) -> int:
    return int(text) if text.isdigit() else -1
