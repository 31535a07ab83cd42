"""Connections to a port in a box, through the box's tunnel (boxes.tunnels:
one process in the box carries them all, so a new connection costs a
message, not an exec), or, in a box whose image has no tunnel yet, each
through a spoon-relay process of its own (socat on the box's loopback). No
route from the host to the box either way: previews work with the box's
network off and on a remote engine. A box is held for previews (a preview
lease, which only its traffic keeps up) while its connections are in use
and IDLE_SECONDS after; an unused connection is kept that long too, for the
next request."""

import asyncio
import contextlib
import logging
import time

from boxes import leases, processes, tunnels
from boxes.models import Box, Lease
from boxes.use import using_box_async

logger = logging.getLogger(__name__)

IDLE_SECONDS = 30.0
RELAY = "/usr/local/bin/spoon-relay"


NothingListens = tunnels.NothingListens


class Relay:
    """One TCP connection to a port in the box, on an exec of its own: for
    boxes whose image has no tunnel."""

    def __init__(self, process: processes.BoxProcess):
        self.process = process
        self.errors = bytearray()
        self.idle_since = time.monotonic()

    @classmethod
    async def open(cls, box: Box, port: int) -> "Relay":
        return cls(await processes.open_process(box, [RELAY, str(port)], stdin=True))

    async def read(self) -> bytes:
        """The next bytes from the server; b"" once it closed. Raises
        NothingListens when the relay found nothing to connect to."""
        while True:
            stream, data = await self.process.read_tagged()
            if not data:
                if b"nothing listens" in self.errors:
                    raise NothingListens()
                return b""
            if stream == processes.STDERR:
                self.errors += data[:4096]
                continue
            return data

    def write(self, data: bytes) -> None:
        self.process.write(data)

    async def drain(self) -> None:
        await self.process.drain()

    def close(self) -> None:
        """socat ends once its input does."""
        with contextlib.suppress(OSError, RuntimeError):
            self.process.close_input()
        self.process.close()


class BoxHold:
    """The box, held for previews, and its unused connections by port."""

    def __init__(self, box: Box):
        self.box = box
        self.ready = asyncio.Event()
        self.error: Exception | None = None
        self.busy = 0
        self.last_used = time.monotonic()
        self.idle: dict[int, list[Connection]] = {}
        self.tunnel: asyncio.Task | None = None  # opening, or open
        self.task = asyncio.create_task(self._hold(), name=f"preview hold {box.username}")

    async def _hold(self) -> None:
        try:
            async with using_box_async(self.box.user, Lease.Kind.PREVIEW, "previews") as box:
                self.box = box
                self.ready.set()
                self._open_tunnel()
                while self.busy or time.monotonic() - self.last_used < IDLE_SECONDS:
                    await asyncio.sleep(min(5.0, IDLE_SECONDS / 3))
                    self._close_idle(older_than=IDLE_SECONDS)
        except Exception as exc:  # the box could not be had: say so to whoever waits
            logger.warning("previews: could not hold %s: %s", self.box.container_name, exc)
            self.error = exc
            self.ready.set()
        finally:
            if _holds.get(self.box.pk) is self:
                del _holds[self.box.pk]
            self._close_idle(older_than=0)
            if self.tunnel and self.tunnel.done() and _usable(self.tunnel):
                self.tunnel.result().close()
            elif self.tunnel:
                self.tunnel.cancel()

    def used(self) -> None:
        """Traffic: activity on the box, written at most every so often."""
        self.last_used = time.monotonic()
        leases.touch_soon(self.box)

    async def connection(self, port: int) -> tuple["Connection", bool]:
        """A connection to port: an unused one (True) or a new one (False)."""
        self.used()
        kept = self.idle.get(port, [])
        while kept:
            relay = kept.pop()
            if time.monotonic() - relay.idle_since < IDLE_SECONDS:
                return relay, True
            relay.close()
        return await self.new_connection(port), False

    async def new_connection(self, port: int) -> "Connection":
        """A new connection to port: through the tunnel, opened again if it
        ended; on a relay of its own if the box's image has none."""
        if self.tunnel is None or (self.tunnel.done() and not _usable(self.tunnel)):
            if self.tunnel and isinstance(self.tunnel.exception(), tunnels.Unavailable):
                return await Relay.open(self.box, port)
            self._open_tunnel()
        try:
            tunnel = await asyncio.shield(self.tunnel)
        except tunnels.Unavailable:
            return await Relay.open(self.box, port)
        return tunnel.connect(port)

    def _open_tunnel(self) -> None:
        """Open the box's tunnel in the background: the first request need not wait for it."""
        self.tunnel = asyncio.create_task(tunnels.Tunnel.open(self.box))
        self.tunnel.add_done_callback(_said_unavailable)

    def give_back(self, port: int, relay: Relay) -> None:
        relay.idle_since = time.monotonic()
        self.idle.setdefault(port, []).append(relay)

    def broken(self) -> None:
        """The box went away under it (stopped, removed): the next request holds it anew."""
        if _holds.get(self.box.pk) is self:
            del _holds[self.box.pk]
        self.last_used = 0
        self.task.cancel()

    def _close_idle(self, older_than: float) -> None:
        now = time.monotonic()
        for relays in self.idle.values():
            for relay in [r for r in relays if now - r.idle_since >= older_than]:
                relays.remove(relay)
                relay.close()


Connection = Relay | tunnels.Connection


def _usable(opening: asyncio.Task) -> bool:
    return not opening.cancelled() and opening.exception() is None and opening.result().alive()


def _said_unavailable(opening: asyncio.Task) -> None:
    if not opening.cancelled() and isinstance(opening.exception(), tunnels.Unavailable):
        logger.warning("previews: %s; each connection starts an exec instead", opening.exception())


_holds: dict[int, BoxHold] = {}


def hold(box: Box) -> BoxHold:
    """The box's hold, made (which starts the box if it is stopped) if needed."""
    current = _holds.get(box.pk)
    if current is None or current.task.done():
        current = _holds[box.pk] = BoxHold(box)
    return current
