"""JSON endpoints for SSH keys (session auth and CSRF), for scripts as the
Settings -> SSH keys page does. Errors answer {"error": "...", "field": "..."}."""

from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from spoon.json_api import api, body, error
from ssh import accounts
from ssh.models import SshKey

MAX_ID = 2**63 - 1  # past it, a database cannot even look


def describe(key: SshKey) -> dict:
    return {
        "id": key.pk,
        "name": key.name,
        "kind": key.kind,
        "bits": key.bits,
        "fingerprint": key.fingerprint,
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
    }


@api(["GET", "POST"], field="public_key")
def key_list(request):
    """GET: the user's keys. POST {"name", "public_key"}: add one (201)."""
    if request.method == "POST":
        data = body(request)
        if not isinstance(data.get("public_key"), str):
            return error("Send public_key: the line of your .pub file.", "public_key")
        if not isinstance(data.get("name", ""), str):
            return error("name is text: what this key is (a laptop, say).", "name")
        key = accounts.add_key(request.user, data.get("name", ""), data["public_key"])
        return JsonResponse(describe(key), status=201)
    return JsonResponse({"keys": [describe(k) for k in SshKey.objects.filter(user=request.user)]})


@api(["GET", "DELETE"])
def key_detail(request, key_id: int):
    key = get_object_or_404(SshKey, pk=min(key_id, MAX_ID), user=request.user)
    if request.method == "DELETE":
        key.delete()
        return JsonResponse({"deleted": key_id})
    return JsonResponse(describe(key))
