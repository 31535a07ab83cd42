from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from boxes import docker_engine, lifecycle, workspaces
from boxes.models import Workspace


@login_required
def workspace_list(request):
    form, error = {"spoon": "", "branch": "main", "repo_url": ""}, ""
    if request.method == "POST":
        form = {k: request.POST.get(k, "").strip() for k in form}
        try:
            made = workspaces.create_workspace(
                request.user, form["spoon"], form["branch"], form["repo_url"]
            )
            messages.success(request, f"Made ~/{made.relative_path}.")
            return redirect("workspaces:detail", made.pk)
        except ValidationError as exc:
            error = exc.messages[0]
        except (workspaces.WorkspaceError, docker_engine.EngineError, lifecycle.BoxError) as exc:
            error = str(exc)
    context = {
        "nav": "workspaces",
        "workspaces": Workspace.objects.filter(user=request.user).order_by("spoon", "branch"),
        "form": form,
        "error": error,
    }
    return render(request, "workspaces/list.html", context, status=400 if error else 200)


@login_required
def workspace_detail(request, workspace_id):
    workspace = get_object_or_404(Workspace, pk=workspace_id, user=request.user)
    choice = getattr(workspace, "agent_choice", None)
    context = {
        "nav": "workspaces",
        "workspace": workspace,
        "agent": choice.agent if choice else "codex",
    }
    return render(request, "workspaces/detail.html", context)


@login_required
@require_POST
def workspace_delete(request, workspace_id):
    workspace = get_object_or_404(Workspace, pk=workspace_id, user=request.user)
    with_checkout = request.POST.get("delete_checkout") == "yes"
    try:
        workspaces.delete_workspace(workspace, delete_checkout=with_checkout)
    except (workspaces.WorkspaceError, docker_engine.EngineError, lifecycle.BoxError) as exc:
        messages.error(request, str(exc))
        return redirect("workspaces:list")
    kept = "" if with_checkout else f" (its folder ~/{workspace.relative_path} is kept)"
    messages.success(request, f"Deleted the workspace {workspace}{kept}.")
    return redirect("workspaces:list")
