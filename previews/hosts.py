"""Preview host names: <port>--<box>.<SPOON_PREVIEW_DOMAIN>, never Spoon's own,
so a page served from a box is another origin: it can neither read Spoon's
cookies nor call Spoon's APIs with them."""

import re
from dataclasses import dataclass

from django.conf import settings

LABEL = re.compile(r"^(\d{1,9})--([a-z_][a-z0-9_-]{0,31})$")


@dataclass(frozen=True)
class Target:
    """What a preview host names. port is None when out of range, box_name
    empty when the name is not a preview address at all."""

    host: str  # as the browser sent it, port included: 8080--alice.localhost:8000
    port: int | None
    box_name: str


def parse(host: str) -> Target | None:
    """The preview a Host header names, or None when it is not under the
    preview domain (then it is Spoon's own)."""
    domain = settings.SPOON_PREVIEW_DOMAIN
    host = host.strip().lower()
    name = host.rsplit(":", 1)[0] if ":" in host and not host.endswith("]") else host
    if not domain or not name.endswith("." + domain):
        return None
    match = LABEL.match(name[: -len(domain) - 1])
    if not match:
        return Target(host, None, "")
    port = int(match.group(1))
    return Target(host, port if 1 <= port <= 65535 else None, match.group(2))


def base_url(scheme: str, spoon_host: str, port: int | str, box_name: str) -> str:
    """A preview's address, built on a page of Spoon served at spoon_host
    (its port, if any, is the previews' too: the same server serves both)."""
    suffix = port_suffix(spoon_host)
    return f"{scheme}://{port}--{box_name}.{settings.SPOON_PREVIEW_DOMAIN}{suffix}"


def spoon_url(scheme: str, target: Target) -> str:
    """Where Spoon is, seen from a preview: SPOON_URL, else the preview
    domain on the preview's own scheme and port."""
    if settings.SPOON_URL:
        return settings.SPOON_URL
    return f"{scheme}://{settings.SPOON_PREVIEW_DOMAIN}{port_suffix(target.host)}"


def port_suffix(host: str) -> str:
    """ ":8000" of a Host header that names a port, else ""."""
    _, _, port = host.rpartition(":")
    return f":{port}" if port.isdigit() else ""
