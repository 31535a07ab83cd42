"""Spoon's side of a preview sign-in: the signed-in user is sent back to the
preview host with a ticket, if the preview is theirs to open."""

import urllib.parse

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect

from boxes import lifecycle
from previews import access, hosts


@login_required
def open_preview(request):
    target = hosts.parse(request.GET.get("host", ""))
    if target is None or target.port is None:
        raise Http404("not a preview address")
    lifecycle.box_for(request.user)  # a user's own box has its name before it first starts
    verdict, _ = access.decide(access.Visitor(user_id=request.user.pk), target, fresh=True)
    if verdict != access.ALLOW:
        raise Http404("not yours to open")  # exactly as a missing box
    back = request.GET.get("next", "/")
    query = urllib.parse.urlencode({"ticket": access.issue_ticket(request.user, target),
                                    "next": back})  # fmt: skip
    return HttpResponseRedirect(f"{request.scheme}://{target.host}/__spoon/auth?{query}")
