"""Using a box: the one way anything holds a user's box while it works there.

    with using_box(user, Lease.Kind.RUN, f"run {run.pk}", image=run.image) as box:
        commands.run(box, ["make", "test"])

    async with using_box_async(user, Lease.Kind.TERMINAL, "terminal 3f2a") as box:
        process = await processes.open_process(box, argv, tty=True)

Four steps, always in this order. A lease of the named kind is taken first,
so a reaper deciding at that moment cannot stop the box before the next
step. The box is brought up on the wanted image: `image` it must run on
(else the block does not start), `preferred_image` it moves to when nothing
else holds it (see lifecycle.ensure_box). A heartbeat renews the lease every
third of its life while the block runs. The lease is released when the block
ends, by an error or a cancellation too. A holder that dies renews nothing,
and its lease lapses by itself after SPOON_LEASE_SECONDS.
"""

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator

from django.conf import settings
from django.db import connections

from boxes import commands, leases, lifecycle
from boxes.models import Box, Lease


@contextlib.contextmanager
def using_box(
    user,
    kind: str,
    holder: str,
    *,
    image: str = "",
    preferred_image: str = "",
    exclusive: bool = False,
) -> Iterator[Box]:
    """Hold the user's box, up on the wanted image, for the block (from any
    thread). An exclusive block waits for the exclusive ones of its kind
    before it, in every process (leases.wait_turn)."""
    lease = _take_lease(user, kind, holder, exclusive)
    stop = threading.Event()
    beat = threading.Thread(
        target=_heartbeat, args=(lease, stop), name=f"lease-{lease.pk}", daemon=True
    )
    beat.start()
    try:
        if exclusive:
            leases.wait_turn(lease)
        yield lifecycle.ensure_box(user, image=image, preferred_image=preferred_image, lease=lease)
    finally:
        stop.set()
        beat.join()
        leases.release(lease)


@contextlib.asynccontextmanager
async def using_box_async(
    user, kind: str, holder: str, *, image: str = "", preferred_image: str = ""
) -> AsyncIterator[Box]:
    """The same on the event loop: the database and the engine are called
    from threads, the heartbeat is a task, and no thread is held meanwhile."""
    taking = asyncio.ensure_future(asyncio.to_thread(_take_lease, user, kind, holder))
    try:
        lease = await asyncio.shield(taking)
    except asyncio.CancelledError:
        # The thread goes on regardless: wait for its lease and give it back.
        with contextlib.suppress(Exception):
            await asyncio.to_thread(leases.release, await taking)
        raise
    stop = asyncio.Event()
    beat = asyncio.create_task(_heartbeat_async(lease, stop))
    try:
        yield await asyncio.to_thread(
            lifecycle.ensure_box,
            user,
            image=image,
            preferred_image=preferred_image,
            lease=lease,
        )
    finally:
        # Shielded whole: a second cancel must not leave the lease renewed or held.
        await asyncio.shield(_let_go_async(lease, stop, beat))


def run_if_running(user, kind: str, holder: str, argv: list[str]) -> commands.Result | None:
    """Run argv in the user's box if it runs already, held as above on the
    image it runs; None when it is not running (a listing never starts it)."""
    box = Box.objects.filter(user=user, state=Box.State.RUNNING).first()
    if box is None:
        return None
    with using_box(user, kind, holder, preferred_image=box.running_image) as box:
        return commands.run(box, argv)


def _take_lease(user, kind: str, holder: str, exclusive: bool = False) -> Lease:
    return leases.acquire(lifecycle.box_for(user), kind, holder, exclusive=exclusive)


def _heartbeat(lease: Lease, stop: threading.Event) -> None:
    try:
        while not stop.wait(settings.SPOON_LEASE_SECONDS / 3):
            leases.keep(lease)
    finally:
        connections.close_all()  # this thread's own connection


async def _heartbeat_async(lease: Lease, stop: asyncio.Event) -> None:
    while True:
        try:
            await asyncio.wait_for(stop.wait(), settings.SPOON_LEASE_SECONDS / 3)
            return
        except TimeoutError:
            await asyncio.to_thread(leases.keep, lease)


async def _let_go_async(lease: Lease, stop: asyncio.Event, beat: asyncio.Task) -> None:
    stop.set()
    await asyncio.wait([beat])  # a beat in flight may take the lease again: let it land
    await asyncio.to_thread(leases.release, lease)
