"""Who may open a preview, and how a browser proves who it is there.

A preview host never sees Spoon's session: it gets a cookie of its own,
host-only (no Domain), HttpOnly, for COOKIE_SECONDS, naming the one host it
was made for. A private preview without one sends the browser to Spoon
(/previews/open), which checks the signed-in user and sends it back with a
ticket: signed, bound to that host and user, good for TICKET_SECONDS and
once. A public link (/__spoon/link/<token>) sets a cookie that works while
the link does. The box's owner always may; another user or a visitor may
when the port is shared with them; staff are users like any other here.
Anything a visitor may not open answers exactly as a missing one."""

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from http.cookies import CookieError, SimpleCookie

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from boxes.models import Box
from previews.hosts import Target
from previews.models import PortShare, SpentTicket

COOKIE_SECONDS = 3600
LINK_COOKIE_SECONDS = 7 * 24 * 3600
TICKET_SECONDS = 60
COOKIE_SALT, TICKET_SALT = "spoon.previews.cookie", "spoon.previews.ticket"
DECISION_SECONDS = 2.0  # how long a decision is reused: a revoked share ends within it

ALLOW, SIGN_IN, MISSING = "allow", "sign in", "missing"


@dataclass(frozen=True)
class Visitor:
    user_id: int | None = None
    link: str = ""  # the public link's nonce they came by


NOBODY = Visitor()


def cookie_name(scheme: str) -> str:
    return "__Host-spoon_preview" if scheme in ("https", "wss") else "spoon_preview"


def read_cookie(cookie_header: str, target: Target, scheme: str) -> Visitor:
    try:
        value = SimpleCookie(cookie_header).get(cookie_name(scheme))
    except CookieError:
        return NOBODY
    if value is None:
        return NOBODY
    try:
        data = signing.loads(value.value, salt=COOKIE_SALT)
    except signing.BadSignature:
        return NOBODY
    if data.get("h") != target.host or data.get("e", 0) < time.time():
        return NOBODY
    return Visitor(user_id=data.get("u"), link=data.get("l", ""))


def set_cookie(target: Target, visitor: Visitor, scheme: str) -> bytes:
    """A Set-Cookie value for this one host. A signed-in user's lasts
    COOKIE_SECONDS; a public link's LINK_COOKIE_SECONDS (the link is
    checked on every request, so revoking it ends the cookie too)."""
    seconds = LINK_COOKIE_SECONDS if visitor.link else COOKIE_SECONDS
    payload = {"h": target.host, "u": visitor.user_id, "l": visitor.link}
    value = signing.dumps({**payload, "e": int(time.time()) + seconds}, salt=COOKIE_SALT)
    secure = "; Secure" if scheme in ("https", "wss") else ""
    return (
        f"{cookie_name(scheme)}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={seconds}{secure}"
    ).encode()


def without_our_cookie(cookie_header: str, scheme: str) -> str:
    """The Cookie header the app in the box gets: everything but ours."""
    ours = cookie_name(scheme) + "="
    kept = [part for part in cookie_header.split(";") if not part.strip().startswith(ours)]
    return ";".join(kept).strip()


def issue_ticket(user, target: Target) -> str:
    payload = {"h": target.host, "u": user.pk, "n": secrets.token_hex(16)}
    return signing.dumps(payload, salt=TICKET_SALT, compress=False)


def redeem_ticket(ticket: str, target: Target) -> Visitor | None:
    """The visitor a ticket vouches for on this host; None when it is
    forged, expired, for another host or spent."""
    try:
        data = signing.loads(ticket, salt=TICKET_SALT, max_age=TICKET_SECONDS)
    except signing.BadSignature:
        return None
    if data.get("h") != target.host:
        return None
    try:
        # A savepoint: a spent ticket leaves the caller's transaction usable.
        with transaction.atomic():
            SpentTicket.objects.create(nonce=data["n"])
    except IntegrityError:
        return None
    # Spent nonces are only needed while their tickets could still be valid.
    stale = timezone.now() - timedelta(seconds=TICKET_SECONDS * 2)
    SpentTicket.objects.filter(spent_at__lt=stale).delete()
    return Visitor(user_id=data["u"])


def redeem_link(token: str, target: Target) -> Visitor | None:
    share = (
        PortShare.objects.filter(
            box__username=target.box_name, port=target.port, sharing=PortShare.Sharing.PUBLIC
        )
        .exclude(link_nonce="")
        .first()
    )
    if share is None or not share.link_matches(token):
        return None
    return Visitor(link=share.link_nonce)


_decisions: dict[tuple[Visitor, Target], tuple[float, str, Box | None]] = {}


def kept_decision(visitor: Visitor, target: Target) -> tuple[str, Box | None] | None:
    """A decision made less than DECISION_SECONDS ago: no database, so the
    event loop may ask."""
    kept = _decisions.get((visitor, target))
    if kept and time.monotonic() - kept[0] < DECISION_SECONDS:
        return kept[1], kept[2]
    return None


def decide(visitor: Visitor, target: Target, fresh: bool = False) -> tuple[str, Box | None]:
    """ALLOW (and the box), SIGN_IN (nobody known yet: perhaps the owner), or
    MISSING (no such box, or not this visitor's to open). Reads the database:
    call it off the event loop. Reused for DECISION_SECONDS unless fresh."""
    kept = None if fresh else kept_decision(visitor, target)
    if kept:
        return kept
    now = time.monotonic()
    verdict, box = _decide(visitor, target)
    if len(_decisions) > 10_000:
        _decisions.clear()
    _decisions[(visitor, target)] = (now, verdict, box)
    return verdict, box


def _decide(visitor: Visitor, target: Target) -> tuple[str, Box | None]:
    if visitor == NOBODY:
        return SIGN_IN, None
    box = Box.objects.select_related("user").filter(username=target.box_name).first()
    if box is None or not box.user.is_active or target.port is None:
        return MISSING, None
    if visitor.user_id == box.user_id:
        return ALLOW, box
    share = PortShare.objects.filter(box=box, port=target.port).first()
    sharing = share.sharing if share else PortShare.Sharing.PRIVATE
    signed_in = visitor.user_id is not None and _active(visitor.user_id)
    if sharing == PortShare.Sharing.USERS and signed_in:
        return ALLOW, box
    if sharing == PortShare.Sharing.PUBLIC and (
        signed_in or (visitor.link and visitor.link == share.link_nonce)
    ):
        return ALLOW, box
    return (MISSING, None) if signed_in else (SIGN_IN, None)


def _active(user_id: int) -> bool:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=user_id, is_active=True).exists()
