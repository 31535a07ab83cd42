from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from boxes import lifecycle
from ssh import accounts
from ssh.models import SshKey


def ssh_host(request) -> str:
    """The host name users connect to: SPOON_SSH_HOST, else the one they reached Spoon by."""
    return settings.SPOON_SSH_HOST or request.get_host().rsplit(":", 1)[0].strip("[]")


@login_required
def keys_page(request):
    errors, form = {}, {"name": "", "public_key": ""}
    if request.method == "POST":
        form = {field: request.POST.get(field, "") for field in form}
        try:
            key = accounts.add_key(request.user, form["name"], form["public_key"])
        except ValidationError as exc:
            errors[getattr(exc, "field", "public_key")] = exc.messages[0]
            if "PRIVATE KEY" in form["public_key"]:  # never sent back, not even to its owner
                form["public_key"] = ""
        else:
            messages.success(request, f"Added {key.name} ({key.fingerprint}).")
            return redirect("ssh:keys")
    port = settings.SPOON_SSH_PORT
    context = {
        "nav": "ssh",
        "keys": SshKey.objects.filter(user=request.user),
        "errors": errors,
        "form": form,
        "login": lifecycle.box_for(request.user).username,
        "host": ssh_host(request),
        "port": port,
        "port_option": "" if port == 22 else f" -p {port}",
    }
    return render(request, "ssh/keys.html", context, status=400 if errors else 200)


@login_required
@require_POST
def delete_key(request, key_id: int):
    key = SshKey.objects.filter(user=request.user, pk=min(key_id, 2**63 - 1)).first()
    if key is not None:
        key.delete()
        messages.success(request, f"Deleted {key.name}: it no longer opens your box.")
    return redirect("ssh:keys")
