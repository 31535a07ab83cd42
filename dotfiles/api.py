"""JSON endpoints of the Settings -> Dotfiles page (session auth and CSRF).
Errors answer {"error": "...", "field": "..."}."""

import base64
import binascii

from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404

from boxes import docker_engine, lifecycle, quota
from dotfiles import encryption, files, home, repository, validation
from dotfiles.materialize import apply_in_background
from dotfiles.models import DotfilesRun, OverlayFile
from spoon.json_api import api, body, error


def describe(file: OverlayFile) -> dict:
    return {
        "path": file.path,
        "size": file.size,
        "executable": file.executable,
        "updated_at": file.updated_at.isoformat(),
    }


@api(["GET", "POST"], field="path")
def file_list(request):
    """The overlay's files; POST saves one named in the body ({"path", ...}),
    as PUT files/<path> does: a path such as "../x" never reaches the server
    in a URL, which the browser would have resolved first."""
    if request.method == "POST":
        data = body(request)
        if not isinstance(data.get("path"), str):
            return error("Name the file: path is its path relative to your home.", "path")
        return save(request, validation.overlay_path(data["path"]), data)
    found = OverlayFile.objects.filter(user=request.user).defer("encrypted_content")
    return JsonResponse({"files": [describe(f) for f in found]})


def save(request, path: str, data: dict) -> JsonResponse:
    executable = data.get("executable", False)
    if not isinstance(executable, bool):
        return error("executable must be true or false.", "executable")
    if isinstance(data.get("content"), str):
        content = data["content"].encode()
    elif isinstance(data.get("content_base64"), str):
        try:
            content = base64.b64decode(data["content_base64"], validate=True)
        except (binascii.Error, ValueError):
            return error("content_base64 is not valid base64.", "content_base64")
    else:
        return error("Send content (text) or content_base64.", "content")
    saved = files.save_file(request.user, path, content, executable)
    run = files.apply_if_running(request.user)
    answer = {**describe(saved), "applying": run is not None, "run": run.pk if run else None}
    return JsonResponse(answer)


@api(["GET", "PUT", "DELETE"], field="path")
def file_detail(request, path):
    path = validation.overlay_path(path)
    if request.method == "PUT":
        return save(request, path, body(request))
    if request.method == "DELETE":
        if not files.delete_path(request.user, path):
            return error(f"You have no file or folder {path}.", "path", status=404)
        files.apply_if_running(request.user)
        return HttpResponse(status=204)
    file = get_object_or_404(OverlayFile, user=request.user, path=path)
    try:
        content = file.content
    except encryption.DecryptionError as exc:
        return error(str(exc), "content", status=500)
    answer = describe(file)
    try:
        answer["content"] = content.decode()
    except UnicodeDecodeError:
        answer["content_base64"] = base64.b64encode(content).decode()
    return JsonResponse(answer)


@api(["GET"])
def home_list(request):
    """The home's dot-files that are not in the overlay (only while the box runs)."""
    try:
        found = home.dotfiles_not_in_overlay(request.user)
    except (docker_engine.EngineError, lifecycle.BoxError):
        found = None  # the list is a convenience: the page works without it
    return JsonResponse({"running": found is not None, "files": found or []})


@api(["GET"], field="path")
def home_file(request, path):
    """A file as the home has it now, read from the box."""
    try:
        found = home.read_home_file(request.user, path)
    except (docker_engine.EngineError, lifecycle.BoxError) as exc:
        return error(str(exc), status=503)
    if found is None:
        return error(f"Your home has no file ~/{path}.", "path", status=404)
    return JsonResponse(found)


@api(["POST"])
def rename(request):
    data = body(request)
    moved = files.rename_path(request.user, str(data.get("from", "")), str(data.get("to", "")))
    files.apply_if_running(request.user)
    return JsonResponse({"renamed": moved})


@api(["GET", "PUT"])
def config(request):
    if request.method == "PUT":
        return JsonResponse(repository.describe(repository.update(request.user, body(request))))
    return JsonResponse(repository.describe(repository.settings_of(request.user)))


@api(["POST", "DELETE"])
def deploy_key(request):
    """POST makes a new deploy key, or takes {"private_key"} pasted; DELETE forgets it."""
    if request.method == "DELETE":
        repository.forget_deploy_key(request.user)
        return HttpResponse(status=204)
    pasted = body(request).get("private_key")
    config = repository.set_deploy_key(request.user, pasted)
    return JsonResponse(repository.describe(config), status=201)


@api(["DELETE"])
def token(request):
    repository.forget_token(request.user)
    return HttpResponse(status=204)


@api(["POST"])
def apply_now(request):
    quota.refuse_if_over(lifecycle.box_for(request.user), "Applying your dotfiles")
    try:
        trigger = DotfilesRun.Trigger.APPLY_NOW
        run = apply_in_background(request.user, trigger, wait_for_box=True)
    except (docker_engine.EngineError, lifecycle.BoxError) as exc:
        return error(str(exc), status=503)
    return JsonResponse({"run": run.pk}, status=202)


def describe_run(run: DotfilesRun) -> dict:
    return {
        "id": run.pk,
        "trigger": run.trigger,
        "status": run.status,
        "exit_code": run.exit_code,
        "steps": run.steps,
        "log": run.log,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


@api(["GET"])
def run_list(request):
    runs = DotfilesRun.objects.filter(user=request.user)[:20]
    return JsonResponse({"runs": [describe_run(r) for r in runs]})


@api(["GET"])
def run_detail(request, run_id):
    return JsonResponse(describe_run(get_object_or_404(DotfilesRun, pk=run_id, user=request.user)))
