"""Staff access, recorded: every time staff open another user's terminal, and
every admin change that decides what runs in a user's box. The admin lists
the records (read-only); the users they affect see them."""

from django.db.models import Q
from django.utils import timezone

from boxes.models import StaffAction


def terminal_opened(staff, owner, typing: bool) -> StaffAction:
    return StaffAction.objects.create(
        staff=staff,
        staff_name=staff.get_username(),
        owner=owner,
        what=StaffAction.What.TERMINAL,
        typing=typing,
        detail="could type" if typing else "read-only",
    )


def terminal_closed(record: StaffAction) -> None:
    StaffAction.objects.filter(pk=record.pk, ended_at=None).update(ended_at=timezone.now())


def changed(staff, what: str, detail: str, owner=None) -> StaffAction:
    """An admin change; owner None when it affects everyone's boxes."""
    return StaffAction.objects.create(
        staff=staff, staff_name=staff.get_username(), owner=owner, what=what, detail=detail
    )


def affecting(user, limit: int = 20):
    """What staff did that touches this user's box, newest first."""
    return StaffAction.objects.filter(Q(owner=user) | Q(owner=None))[:limit]
