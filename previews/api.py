"""JSON endpoints for the ports of the user's box (session auth and CSRF)."""

from django.http import JsonResponse

from boxes import docker_engine, lifecycle
from previews import hosts, ports
from previews.models import PortShare
from spoon.json_api import api, body


def describe(request, box, port: int, share: PortShare | None = None, found=None) -> dict:
    share = share or ports.share_of(box, port)
    url = hosts.base_url(request.scheme, request.get_host(), port, box.username) + "/"
    return {
        "port": port,
        "url": url,
        "sharing": share.sharing,
        "link": f"{url}__spoon/link#{share.link_token}" if share.sharing == "public" else "",
        **(found or {}),
    }


@api(["GET"])
def port_list(request):
    """What listens in the box now (only while it runs), and every port shared."""
    box = lifecycle.box_for(request.user)
    try:
        found = ports.listening(request.user)
    except (docker_engine.EngineError, lifecycle.BoxError):
        found = None  # the list is a convenience: previews work without it
    listed = {p["port"]: p for p in found or []}
    shared = {s.port: s for s in PortShare.objects.filter(box=box)}
    answer = [
        describe(request, box, port, shared.get(port),
                 listed.get(port, {"address": "", "process": "", "reachable": False}))
        for port in sorted(set(listed) | {p for p, s in shared.items() if s.sharing != "private"})
    ]  # fmt: skip
    for item in answer:
        item["listening"] = item["port"] in listed
    return JsonResponse({"running": found is not None, "ports": answer})


@api(["GET", "PUT"], field="sharing")
def port_detail(request, port):
    port = ports.check_port(port)
    box = lifecycle.box_for(request.user)
    if request.method == "PUT":
        share = ports.set_sharing(box, port, body(request).get("sharing"))
        return JsonResponse(describe(request, box, port, share))
    return JsonResponse(describe(request, box, port))


@api(["POST"])
def new_link(request, port):
    port = ports.check_port(port)
    box = lifecycle.box_for(request.user)
    return JsonResponse(describe(request, box, port, ports.new_link(box, port)))
