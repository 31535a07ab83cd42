"""Whose keys open which box: registering keys, and finding the user an SSH
login names, with a key of theirs. The SSH user name is the box's user name
(what the Settings -> SSH keys page shows), with a workspace to start in
after a + if wanted: alice+myapp/main."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from boxes import lifecycle
from boxes.models import Box
from ssh import keys
from ssh.models import SshKey

MAX_KEYS = 50
MAX_NAME = 100


def add_key(user, name: str, text: str) -> SshKey:
    """Register a key for user; ValidationError (with its field) says why not.
    The user's box gets its name now if it had none: the name they log in as."""
    name = (name or "").strip()
    parsed = keys.parse(text)
    if not name:
        name = parsed.comment or parsed.kind
    if len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        error = ValidationError(f"A name is one line of at most {MAX_NAME} characters.")
        error.field = "name"
        raise error
    if SshKey.objects.filter(user=user).count() >= MAX_KEYS:
        raise keys.refused(f"You have {MAX_KEYS} keys, the most there may be: delete one first.")
    if SshKey.objects.filter(user=user, fingerprint=parsed.fingerprint).exists():
        raise keys.refused(f"You have added this key already ({parsed.fingerprint}).")
    lifecycle.box_for(user)
    try:
        with transaction.atomic():
            return SshKey.objects.create(
                user=user, name=name, kind=parsed.kind, bits=parsed.bits,
                public_key=parsed.public_key, fingerprint=parsed.fingerprint,
            )  # fmt: skip
    except IntegrityError:  # the same key sent twice at once
        raise keys.refused(f"You have added this key already ({parsed.fingerprint}).") from None


def split_login(login: str) -> tuple[str, str]:
    """alice+myapp/main -> ("alice", "myapp/main"): the box's user name, and
    the workspace (its folder under ~/Code) a session starts in, if named."""
    name, _, workspace = login.partition("+")
    return name, workspace


def workspace_folder(home: str, workspace: str) -> str:
    """The folder of a workspace named in a login; ValueError says why not."""
    parts = workspace.split("/")
    if (
        len(parts) < 2
        or any(p in ("", ".", "..") or p.startswith("-") for p in parts)
        or any(ord(c) < 32 or c in "\\\x7f" for c in workspace)
    ):
        raise ValueError(
            f"{workspace!r} names no workspace: log in as USER+SPOON/BRANCH to start "
            "in ~/Code/SPOON/BRANCH"
        )
    return f"{home}/Code/{workspace}"


def user_named(login: str):
    """The active user whose box user name is login, or None. (Every user who
    added a key has a box name: the keys page gives one.)"""
    box = Box.objects.select_related("user").filter(username=login).first()
    return box.user if box is not None and box.user.is_active else None


def key_for(login: str, fingerprint: str) -> SshKey | None:
    """The key that lets login in, if it is theirs and they are active."""
    user = user_named(login)
    if user is None:
        return None
    return SshKey.objects.select_related("user").filter(user=user, fingerprint=fingerprint).first()


def used(key: SshKey) -> None:
    SshKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
