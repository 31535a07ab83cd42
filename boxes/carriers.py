"""Who carries a piece of work that lives in a box beyond any one request (a
workspace run, a dotfiles apply): the one Spoon process that follows it and
records it. Its row has `carrier` (a claim's token) and `carried_until`,
which the carrier renews while it follows. A process that stops lets go of
its claims as it exits; one that is killed renews nothing, and its claims
lapse after SPOON_LEASE_SECONDS. Either way another process claims the work
(claim_orphans) and carries on with it, while its commands go on in the box.
"""

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connections, models
from django.db.models import Q
from django.utils import timezone

from spoon import metrics

logger = logging.getLogger(__name__)

_carried: dict[str, type[models.Model]] = {}  # this process's claims, let go of at exit
_carried_lock = threading.Lock()
stopping = threading.Event()  # set as this process exits


class NotCarried(Exception):
    """This process carries the work no more: it stopped, or another took over."""


def _until():
    return timezone.now() + timedelta(seconds=settings.SPOON_LEASE_SECONDS)


def new_claim(work: models.Model) -> None:
    """Claim work being made (before it is saved) for this process."""
    work.carrier, work.carried_until = uuid.uuid4().hex, _until()


def claim_orphans(unfinished: models.QuerySet) -> list[int]:
    """Claim every row of `unfinished` whose carrier went away; their ids.
    Each is claimed by one process only: the update re-checks that it
    lapsed. A process that is stopping claims none."""
    if stopping.is_set():
        return []
    lapsed = Q(carried_until__lt=timezone.now()) | Q(carried_until__isnull=True)
    orphans = unfinished.filter(lapsed)
    claimed = []
    for pk in orphans.values_list("pk", flat=True):
        if orphans.filter(pk=pk).update(carrier=uuid.uuid4().hex, carried_until=_until()):
            claimed.append(pk)
            metrics.carried_on.labels(unfinished.model._meta.model_name).inc()
    return claimed


def hold(work: models.Model) -> None:
    """Inside a transaction: lock the work's row if this process (its
    carrier) still carries it, so no other takes it over before the
    transaction ends; else raise NotCarried."""
    rows = type(work).objects.select_for_update().filter(pk=work.pk, carrier=work.carrier)
    if not rows.exists():
        raise NotCarried(f"{work._meta.verbose_name} {work.pk} is carried by another process now")


@contextlib.contextmanager
def carrying(work: models.Model) -> Iterator[None]:
    """Keep the work's claim renewed for the block, and let go of it at the end."""
    stop = threading.Event()
    with _carried_lock:
        _carried[work.carrier] = type(work)
    beat = threading.Thread(target=_renew, args=(work, stop), name=f"carry-{work.pk}", daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()
        with _carried_lock:
            _carried.pop(work.carrier, None)


def _renew(work: models.Model, stop: threading.Event) -> None:
    rows = type(work).objects.filter(pk=work.pk, carrier=work.carrier)
    try:
        while not stop.wait(settings.SPOON_LEASE_SECONDS / 3):
            try:
                if not rows.update(carried_until=_until()):
                    logger.warning("%s: another process carries it now", work)
                    return
            except DatabaseError:
                logger.exception("%s: renewing its claim failed; trying again", work)
    finally:
        connections.close_all()


def in_a_thread(name: str, work) -> None:
    """Carry work() out in a daemon thread of its own, which closes its
    database connection when done."""

    def carry():
        try:
            work()
        finally:
            connections.close_all()

    threading.Thread(target=carry, name=name, daemon=True).start()


def keep_adopting(*adopters) -> threading.Thread:
    """Call each adopter (a function that claims orphans and carries on with
    them) now and every third of SPOON_LEASE_SECONDS, in a thread of this
    (web) process, for as long as it runs."""

    def loop():
        while not stopping.is_set():
            for adopt in adopters:
                try:
                    adopt()
                except Exception:
                    logger.exception("%s failed; trying again", adopt.__qualname__)
                finally:
                    connections.close_all()
            stopping.wait(settings.SPOON_LEASE_SECONDS / 3)

    thread = threading.Thread(target=loop, name="adopt-orphans", daemon=True)
    thread.start()
    return thread


def let_go() -> None:
    """A process stopping (a deploy) hands its work on at once, rather than
    after SPOON_LEASE_SECONDS: the commands go on in the boxes."""
    stopping.set()
    with _carried_lock:
        claims = dict(_carried)
    for model in set(claims.values()):
        mine = [carrier for carrier, kind in claims.items() if kind is model]
        try:
            model.objects.filter(carrier__in=mine).update(carrier="", carried_until=None)
            logger.info("handed on %d of %s as this process stops", len(mine), model.__name__)
        except Exception:
            logger.exception("handing on the %s of this process failed", model.__name__)


# Among the threading module's exit calls rather than atexit's: those run
# first, and the thread pools refuse work in them, which a carrier's thread
# would otherwise take for its work failing.
threading._register_atexit(let_go)
