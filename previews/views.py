"""Spoon's side of a preview sign-in: the signed-in user is sent back to the
preview host with a ticket, if the preview is theirs to open."""

import urllib.parse

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseRedirect

from boxes import lifecycle
from previews import access, hosts, pages
from workspaces.access import TooManyTickets, count_ticket


@login_required
def open_preview(request):
    host = request.GET.get("host", "")
    target = hosts.parse(host)
    if target is None or target.port is None:
        return answer(pages.bad_address(host))
    lifecycle.box_for(request.user)  # a user's own box has its name before it first starts
    verdict, _ = access.decide(access.Visitor(user_id=request.user.pk), target, fresh=True)
    if verdict != access.ALLOW:
        return answer(pages.missing(target.host))  # exactly as a missing box
    try:
        count_ticket(request.user)
    except TooManyTickets as exc:
        return answer(pages.too_many_tickets(target.host, exc.message))
    back = request.GET.get("next", "/")
    query = urllib.parse.urlencode({"ticket": access.issue_ticket(request.user, target),
                                    "next": back})  # fmt: skip
    return HttpResponseRedirect(f"{request.scheme}://{target.host}/__spoon/auth?{query}")


def answer(page) -> HttpResponse:
    status, headers, body = page
    response = HttpResponse(body, status=status, content_type="text/html; charset=utf-8")
    for name, value in headers:
        if name == b"retry-after":
            response["Retry-After"] = value.decode()
    return response
