"""What Spoon's pages need of previews: whether they are on, and the
address pattern of the user's own previews ({port} in it), for the ports
list and the terminal's links."""

from django.conf import settings

from boxes.models import Box
from previews import hosts


def previews(request) -> dict:
    if not settings.SPOON_PREVIEW_DOMAIN or not request.user.is_authenticated:
        return {"preview_pattern": ""}
    name = Box.objects.filter(user=request.user).values_list("username", flat=True).first()
    if not name:
        return {"preview_pattern": ""}
    return {"preview_pattern": hosts.base_url(request.scheme, request.get_host(), "{port}", name)}
