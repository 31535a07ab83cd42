"""Leases hold a box while something uses it; activity keeps it from idling."""

import asyncio
import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from boxes.models import Box, Lease

logger = logging.getLogger(__name__)

# Per process: when each box's activity was last written, so that a busy
# terminal writes at most once per SPOON_ACTIVITY_WRITE_SECONDS.
_last_written: dict[int, float] = {}
_activity_lock = threading.Lock()


def acquire(
    box: Box, kind: str, holder: str, seconds: int | None = None, exclusive: bool = False
) -> Lease:
    now = timezone.now()
    with transaction.atomic():  # one commit: a lease is taken on every use of a box
        lease = Lease.objects.create(
            box=box,
            kind=kind,
            holder=holder[:200],
            exclusive=exclusive,
            renewed_at=now,
            expires_at=now + timedelta(seconds=seconds or settings.SPOON_LEASE_SECONDS),
        )
        touch(box, force=True)
    return lease


def renew(lease: Lease, seconds: int | None = None) -> bool:
    """Extend a lease; False when it was released (or reaped) meanwhile."""
    now = timezone.now()
    expires = now + timedelta(seconds=seconds or settings.SPOON_LEASE_SECONDS)
    renewed = Lease.objects.filter(pk=lease.pk).update(renewed_at=now, expires_at=expires)
    if renewed:
        lease.renewed_at, lease.expires_at = now, expires
        if lease.kind not in Lease.BY_TRAFFIC:  # a heartbeat of an open, silent tab is not use
            touch(lease.box)
    return bool(renewed)


def release(lease: Lease) -> None:
    with transaction.atomic():
        Lease.objects.filter(pk=lease.pk).delete()
        touch(lease.box, force=True)


def wait_turn(lease: Lease, poll: float = 0.2) -> None:
    """Wait while an older live exclusive lease of the same kind holds the
    box: a lock across processes, in the order it was asked for, that a dead
    holder lets go of when its lease lapses."""
    while (
        Lease.objects.live()
        .filter(box_id=lease.box_id, kind=lease.kind, exclusive=True, pk__lt=lease.pk)
        .exists()
    ):
        time.sleep(poll)


def activity_due(box: Box) -> bool:
    """Would touch() write now? Cheap: callers on the event loop ask first."""
    last = _last_written.get(box.pk, 0.0)
    return timezone.now().timestamp() - last >= settings.SPOON_ACTIVITY_WRITE_SECONDS


def touch_soon(box: Box) -> None:
    """touch() from the event loop: in a thread, and only when one is due."""
    if activity_due(box):
        asyncio.get_running_loop().run_in_executor(None, touch, box)


def touch(box: Box, force: bool = False) -> None:
    """Record activity on the box, at most once per SPOON_ACTIVITY_WRITE_SECONDS."""
    now = timezone.now()
    stamp = now.timestamp()
    with _activity_lock:
        last = _last_written.get(box.pk, 0.0)
        if not force and stamp - last < settings.SPOON_ACTIVITY_WRITE_SECONDS:
            return
        _last_written[box.pk] = stamp
    Box.objects.filter(pk=box.pk, last_activity_at__lt=now).update(last_activity_at=now)
    box.last_activity_at = now


def keep(lease: Lease) -> None:
    """One heartbeat: renew, or take the lease again if it was lost. A failed
    beat is logged and the next one tries again; it never ends the holder."""
    try:
        if not renew(lease):
            fresh = acquire(lease.box, lease.kind, lease.holder, exclusive=lease.exclusive)
            lease.pk, lease.expires_at = fresh.pk, fresh.expires_at
    except DatabaseError:
        logger.exception("renewing %s failed; retrying at the next beat", lease)


def idle_stop_in(box: Box) -> float | None:
    """Seconds until reapboxes may stop the box as idle (0 or less: it may
    now); None while a lease of working kind holds it."""
    if box.leases.holding().exists():
        return None
    last = Box.objects.filter(pk=box.pk).values_list("last_activity_at", flat=True).first()
    if last is None:
        return None
    deadline = last + timedelta(seconds=settings.SPOON_BOX_IDLE_SECONDS)
    return (deadline - timezone.now()).total_seconds()
