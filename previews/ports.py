"""The ports something listens on in a box, found inside it (ss), and how
each is shared: what the landing and workspace pages list with Open buttons."""

import re

from django.core.exceptions import ValidationError

from boxes.models import Box, Lease
from boxes.use import run_if_running
from previews.models import PortShare

# LISTEN 0 5 127.0.0.1:8080 0.0.0.0:* users:(("python3",pid=74,fd=3))
LINE = re.compile(r"^\S+\s+\d+\s+\d+\s+(\S+):(\d+)\s+\S+\s*(.*)$")
PROCESS = re.compile(r'\(\("([^"]+)"')
# Where a relay (on the box's loopback) reaches a server.
REACHABLE = {"127.0.0.1", "0.0.0.0", "*", "[::]", "[::1]", "[::ffff:127.0.0.1]"}


def listening(user) -> list[dict] | None:
    """[{"port", "address", "process", "reachable"}] by port; None while the
    box is not running (listing never starts it)."""
    found = run_if_running(user, Lease.Kind.PREVIEW, "listing ports", ["ss", "-Hltnp"])
    if found is None or not found.ok:
        return None
    ports: dict[int, dict] = {}
    for line in found.output.decode(errors="replace").splitlines():
        match = LINE.match(line.strip())
        if not match:
            continue
        address, port = match.group(1), int(match.group(2))
        process = PROCESS.search(match.group(3))
        name = process.group(1) if process else ""
        entry = ports.setdefault(
            port, {"port": port, "address": address, "reachable": False, "process": name}
        )
        entry["reachable"] = entry["reachable"] or address in REACHABLE
    return [ports[p] for p in sorted(ports)]


def share_of(box: Box, port: int) -> PortShare:
    return PortShare.objects.filter(box=box, port=port).first() or PortShare(box=box, port=port)


def set_sharing(box: Box, port: int, sharing: str) -> PortShare:
    """Share port with nobody else (private), signed-in users, or anyone with
    its link; going public the first time makes the link."""
    if sharing not in PortShare.Sharing.values:
        raise ValidationError(f"sharing is one of: {', '.join(PortShare.Sharing.values)}.")
    share = share_of(box, port)
    share.sharing = sharing
    if sharing == PortShare.Sharing.PUBLIC and not share.link_nonce:
        share.new_link()
    share.full_clean(exclude=["box"])
    share.save()
    return share


def new_link(box: Box, port: int) -> PortShare:
    """A new public link; the old one stops working (within seconds)."""
    share = share_of(box, port)
    share.new_link()
    share.save()
    return share


def check_port(value) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        raise ValidationError("A port is a number from 1 to 65535.")
    return port
