"""Who carries a run: the one Spoon process that follows it in its box and
records it. The carrier renews its claim (Run.carrier, Run.carried_until)
while it follows. A process that stops lets go of its claims as it exits; one
that is killed renews nothing, and its claims lapse after SPOON_LEASE_SECONDS.
Either way another process takes the run over (runs.adopt_orphans), while
the run's command goes on in the box."""

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.models import Q
from django.utils import timezone

from workspaces.models import Run

logger = logging.getLogger(__name__)

_carried: set[str] = set()  # this process's claims, let go of at exit
_carried_lock = threading.Lock()
stopping = threading.Event()  # set as this process exits


class NotCarried(Exception):
    """This process carries the run no more: it stopped, or another took over."""


def hold(run: Run) -> None:
    """Inside a transaction: lock the run's row if this process (run.carrier)
    still carries it, so no other process takes it over before the
    transaction ends; else raise NotCarried."""
    if not Run.objects.select_for_update().filter(pk=run.pk, carrier=run.carrier).exists():
        raise NotCarried(f"run {run.pk} is carried by another process now")


def _until():
    return timezone.now() + timedelta(seconds=settings.SPOON_LEASE_SECONDS)


def new_claim(run: Run) -> None:
    """Claim a run being made (before it is saved) for this process."""
    run.carrier, run.carried_until = uuid.uuid4().hex, _until()


def claim_orphans() -> list[int]:
    """Claim every unfinished run whose carrier went away; their ids. Each is
    claimed by one process only: the update re-checks that it lapsed. A
    process that is stopping claims none."""
    if stopping.is_set():
        return []
    lapsed = Q(carried_until__lt=timezone.now()) | Q(carried_until__isnull=True)
    orphans = Run.objects.exclude(status__in=Run.FINISHED).filter(lapsed)
    claimed = []
    for pk in orphans.values_list("pk", flat=True):
        if orphans.filter(pk=pk).update(carrier=uuid.uuid4().hex, carried_until=_until()):
            claimed.append(pk)
    return claimed


@contextlib.contextmanager
def carrying(run: Run) -> Iterator[None]:
    """Keep run's claim renewed for the block, and let go of it at the end."""
    stop = threading.Event()
    with _carried_lock:
        _carried.add(run.carrier)
    beat = threading.Thread(
        target=_renew, args=(run.pk, run.carrier, stop), name=f"carry-{run.pk}", daemon=True
    )
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()
        with _carried_lock:
            _carried.discard(run.carrier)


def _renew(pk: int, carrier: str, stop: threading.Event) -> None:
    try:
        while not stop.wait(settings.SPOON_LEASE_SECONDS / 3):
            try:
                if not Run.objects.filter(pk=pk, carrier=carrier).update(carried_until=_until()):
                    logger.warning("run %s: another process carries it now", pk)
                    return
            except DatabaseError:
                logger.exception("run %s: renewing its claim failed; trying again", pk)
    finally:
        connections.close_all()


def let_go() -> None:
    """A process stopping (a deploy) hands its runs on at once, rather than
    after SPOON_LEASE_SECONDS: their commands go on in the boxes."""
    stopping.set()
    with _carried_lock:
        claims = list(_carried)
    if claims:
        try:
            Run.objects.filter(carrier__in=claims).update(carrier="", carried_until=None)
            logger.info("handed on %d runs as this process stops", len(claims))
        except Exception:
            logger.exception("handing on the runs of this process failed")


# Among the threading module's exit calls rather than atexit's: those run
# first, and the thread pools refuse work in them, which a run's thread
# would otherwise take for the run failing.
threading._register_atexit(let_go)
