from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from boxes import docker_engine, lifecycle, stacks
from boxes.models import RegisteredImage
from workspaces import folders
from workspaces.models import Agent, Workspace


@login_required
def workspace_list(request):
    form, error, errors = {"spoon": "", "branch": "main", "repo_url": "", "image": ""}, "", {}
    if request.method == "POST":
        form = {k: request.POST.get(k, "").strip() for k in form}
        try:
            with folders.field_errors("image"):
                image = stacks.pick(form["image"])
            made = folders.create_workspace(
                request.user, form["spoon"], form["branch"], form["repo_url"], image=image
            )
            messages.success(request, f"Made ~/{made.relative_path}.")
            return redirect("workspaces:detail", made.pk)
        except ValidationError as exc:  # shown next to the field at fault, when it names one
            if hasattr(exc, "error_dict"):
                errors = {field: messages[0] for field, messages in exc.message_dict.items()}
            else:
                error = exc.messages[0]
        except (folders.WorkspaceError, docker_engine.EngineError, lifecycle.BoxError) as exc:
            error = str(exc)
    context = {
        "nav": "workspaces",
        "workspaces": Workspace.objects.filter(user=request.user)
        .select_related("image")
        .order_by("spoon", "branch"),
        "images": RegisteredImage.objects.filter(offered=True),
        "form": form,
        "error": error,
        "errors": errors,
    }
    failed = error or errors
    return render(request, "workspaces/list.html", context, status=400 if failed else 200)


@login_required
def workspace_detail(request, workspace_id):
    workspace = get_object_or_404(Workspace, pk=workspace_id, user=request.user)
    context = {
        "nav": "workspaces",
        "workspace": workspace,
        "agent": workspace.agent or Agent.DEFAULT,
        "default_agent": Agent.DEFAULT,
        "agents": Agent.objects.order_by("name"),
        "images": RegisteredImage.objects.filter(offered=True).exclude(pk=workspace.image_id),
    }
    return render(request, "workspaces/detail.html", context)


@login_required
@require_POST
def workspace_image(request, workspace_id):
    workspace = get_object_or_404(Workspace, pk=workspace_id, user=request.user)
    try:
        image = stacks.pick(request.POST.get("image", "").strip(), current=workspace.image)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("workspaces:detail", workspace.pk)
    folders.set_workspace_image(workspace, image)
    chosen = image.name if image else "your default image"
    messages.success(
        request,
        f"This workspace now uses {chosen}: your box moves to it at this workspace's next "
        f"terminal or run, as soon as nothing else uses the box.",
    )
    return redirect("workspaces:detail", workspace.pk)


@login_required
@require_POST
def workspace_agent(request, workspace_id):
    workspace = get_object_or_404(Workspace, pk=workspace_id, user=request.user)
    name = request.POST.get("agent", "").strip()
    agent = Agent.objects.filter(name=name).first() if name else None
    if name and agent is None:
        messages.error(request, f"No agent {name!r}.")
    else:
        folders.choose_agent(workspace, agent)
        messages.success(request, f"This workspace's turns now use {agent or 'the default agent'}.")
    return redirect("workspaces:detail", workspace.pk)


@login_required
@require_POST
def workspace_delete(request, workspace_id):
    workspace = get_object_or_404(Workspace, pk=workspace_id, user=request.user)
    with_checkout = request.POST.get("delete_checkout") == "yes"
    try:
        folders.delete_workspace(workspace, delete_checkout=with_checkout)
    except (folders.WorkspaceError, docker_engine.EngineError, lifecycle.BoxError) as exc:
        messages.error(request, str(exc))
        return redirect("workspaces:list")
    kept = "" if with_checkout else f" (its folder ~/{workspace.relative_path} is kept)"
    messages.success(request, f"Deleted the workspace {workspace}{kept}.")
    return redirect("workspaces:list")
