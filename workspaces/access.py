"""Who may open which WebSocket into a box: short-lived, single-use tickets,
and the permission to open another user's terminal. Both sockets (the
terminal, a run's live output) admit their clients with admit(), and their
ticket endpoints answer with offer().

A ticket is signed (Django's signing, with the SECRET_KEY), expires after
TICKET_SECONDS, names the user who asked, whose box it opens, which
workspace and which socket (the terminal, or one run's output: a ticket
opens no other), and is spent by its first use. The session cookie must match too:
a ticket alone opens nothing, nor does a cookie alone.
"""

import logging
import secrets
import urllib.parse
from dataclasses import dataclass
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from workspaces.models import IssuedTicket, SpentTicket, Workspace

logger = logging.getLogger(__name__)

TICKET_SECONDS = 60
SALT = "spoon.terminal.ticket"  # its name from before tickets served run streams too
OPEN_OTHERS_PERMISSION = "boxes.open_user_terminal"
TERMINAL = "terminal"


def run_socket(run_id: int) -> str:
    """What a ticket for run_id's live output opens."""
    return f"run {run_id}"


class TicketRefused(Exception):
    """The ticket does not open this socket. code: 4401 or 4403."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code


class TooManyTickets(ValidationError):
    status = 429  # the JSON API answers it as such


@dataclass(frozen=True)
class Grant:
    """What a valid ticket opens."""

    owner: object  # the user whose box it is
    workspace: Workspace | None
    user: object = None  # who opens it: the owner, or staff
    typing: bool = True  # staff may only watch unless they chose to type

    @property
    def by_staff(self) -> bool:
        return self.user is not None and self.user.pk != self.owner.pk


def may_open(user, owner) -> bool:
    return user.pk == owner.pk or (user.is_staff and user.has_perm(OPEN_OTHERS_PERMISSION))


def issue(
    user, owner=None, workspace: Workspace | None = None, typing=False, opens=TERMINAL
) -> str:
    """A ticket for user to open owner's terminal (their own by default), or
    what `opens` names. Staff opening another user's terminal only watch it
    unless `typing`."""
    owner = owner or user
    if not may_open(user, owner):
        raise TicketRefused(4403, "not allowed to open this user's terminal")
    if workspace is not None and workspace.user_id != owner.pk:
        raise TicketRefused(4403, "that workspace belongs to someone else")
    count_ticket(user)
    payload = {
        "u": user.pk,
        "o": owner.pk,
        "w": workspace.pk if workspace else None,
        "n": secrets.token_hex(16),
        "t": owner.pk == user.pk or bool(typing),
        "s": opens,
    }
    return signing.dumps(payload, salt=SALT, compress=False)


def count_ticket(user) -> None:
    """At most SPOON_TICKETS_PER_MINUTE tickets a minute for each user, of
    every kind (sockets, preview sign-ins): a page asks for one per socket
    it opens, a script in a loop for many more. TooManyTickets past it."""
    now = timezone.now()
    most = settings.SPOON_TICKETS_PER_MINUTE
    recent = IssuedTicket.objects.filter(user=user, issued_at__gt=now - timedelta(minutes=1))
    with transaction.atomic():  # the user's row locked: requests at once count in turn
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        if recent.count() >= most:
            raise TooManyTickets(
                f"You asked for {most} tickets within a minute, as many as one may: wait a moment."
            )
        IssuedTicket.objects.create(user=user)
    IssuedTicket.objects.filter(issued_at__lt=now - timedelta(minutes=2)).delete()


def offer(ticket: str, socket: str, *args) -> dict:
    """What a ticket endpoint answers: the ticket, the URL of the WebSocket
    it opens (by its name in spoon.urls, with args), and how long it lasts."""
    return {
        "ticket": ticket,
        "ws_url": f"{reverse(socket, args=args)}?ticket={ticket}",
        "expires_in": TICKET_SECONDS,
    }


async def admit(consumer, opens: str = TERMINAL) -> Grant | None:
    """Accept a WebSocket and redeem the ticket in its query string for what
    the socket `opens`; None,
    with the socket closed by the refusal's code, when it opens nothing.
    Accepting first lets a refusal reach the page as a close code (4401,
    4403) instead of a bare failed handshake."""
    await consumer.accept()
    query = urllib.parse.parse_qs(consumer.scope.get("query_string", b"").decode())
    ticket = (query.get("ticket") or [None])[0]
    try:
        return await sync_to_async(redeem)(ticket, consumer.scope.get("user"), opens)
    except TicketRefused as refused:
        logger.info("%s refused (%s): %s", consumer.scope.get("path"), refused.code, refused)
        await consumer.close(code=refused.code)
        return None


def redeem(ticket: str | None, user, opens: str = TERMINAL) -> Grant:
    """Check a ticket against the connecting user and the socket, and spend it."""
    if not ticket:
        raise TicketRefused(4401, "no ticket")
    if user is None or not user.is_authenticated:
        raise TicketRefused(4401, "not logged in")
    try:
        payload = signing.loads(ticket, salt=SALT, max_age=TICKET_SECONDS)
    except signing.SignatureExpired as exc:
        raise TicketRefused(4401, "ticket expired") from exc
    except signing.BadSignature as exc:
        raise TicketRefused(4401, "ticket forged or damaged") from exc
    if not isinstance(payload, dict) or not {"u", "o", "w", "n"} <= payload.keys():
        raise TicketRefused(4401, "ticket malformed")
    if payload["u"] != user.pk:
        raise TicketRefused(4403, "ticket issued to another user")
    if payload.get("s") != opens:
        raise TicketRefused(4403, "ticket issued for another socket")
    owner = get_user_model().objects.filter(pk=payload["o"]).first()
    if owner is None or not may_open(user, owner):
        raise TicketRefused(4403, "not allowed to open this user's terminal")
    workspace = None
    if payload["w"] is not None:
        mine = Workspace.objects.filter(pk=payload["w"], user=owner)
        workspace = mine.select_related("image").first()
        if workspace is None:
            raise TicketRefused(4403, "that workspace is not the owner's")
    _spend(payload["n"])
    typing = owner.pk == user.pk or payload.get("t") is True
    return Grant(owner=owner, workspace=workspace, user=user, typing=typing)


def _spend(nonce: str) -> None:
    try:
        SpentTicket.objects.create(nonce=nonce)
    except IntegrityError as exc:
        raise TicketRefused(4401, "ticket already used") from exc
    # Spent nonces are only needed while their tickets could still be valid.
    SpentTicket.objects.filter(
        spent_at__lt=timezone.now() - timedelta(seconds=TICKET_SECONDS * 2)
    ).delete()
