from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from boxes import docker_engine, lifecycle, naming
from dotfiles import validation
from dotfiles.models import Secret

MAX_SECRET_BYTES = 64 * 1024


def box_username(user) -> str:
    try:
        return lifecycle.box_for(user).username
    except (docker_engine.EngineError, lifecycle.BoxError):
        return naming.linux_name(user.get_username())  # the page serves with the engine down


@login_required
def settings_page(request):
    return render(
        request,
        "dotfiles/settings.html",
        {
            "nav": "dotfiles",
            "username": box_username(request.user),
            "max_bytes": settings.SPOON_DOTFILE_MAX_BYTES,
            "timeout": settings.SPOON_DOTFILES_TIMEOUT,
        },
    )


@login_required
def secrets_page(request):
    errors, name = {}, ""
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        # A form sends a textarea's line breaks as CRLF: keep the LF the user wrote.
        value = request.POST.get("value", "").replace("\r\n", "\n")
        try:
            validation.secret_name(name)
        except ValidationError as exc:
            errors["name"] = exc.messages[0]
        if not value:
            errors["value"] = "A secret needs a value."
        elif len(value.encode()) > MAX_SECRET_BYTES or "\0" in value:
            errors["value"] = "A value is text of at most 64 KiB, without NUL bytes."
        if not errors:
            secret = Secret.objects.filter(user=request.user, name=name).first() or Secret(
                user=request.user, name=name
            )
            secret.value = value
            secret.save()
            messages.success(request, f"Saved {name}.")
            return redirect("dotfiles:secrets")
    secrets = Secret.objects.filter(user=request.user).defer("encrypted_value")
    context = {"nav": "secrets", "secrets": secrets, "errors": errors, "form_name": name}
    return render(request, "dotfiles/secrets.html", context, status=400 if errors else 200)


@login_required
@require_POST
def delete_secret(request, name):
    deleted, _ = Secret.objects.filter(user=request.user, name=name).delete()
    if deleted:
        messages.success(request, f"Deleted {name}.")
    return redirect("dotfiles:secrets")
