"""TCP connections to ports on a box's own loopback, many over one process:
spoon-mux in the box, opened through the stream primitive. A new connection
is then one message on a stream already open, about a millisecond, where an
exec of its own costs the engine some 60 ms of starting (bench/preview.py
measures both). No route from the host to the box: it works with the box's
network off and on a remote engine.

    tunnel = await Tunnel.open(box)
    connection = tunnel.connect(8080)   # no wait: the bytes may follow at once
    connection.write(request); await connection.drain()
    while data := await connection.read(): ...
    connection.close()

The frames are spoon-mux's (images/job/rootfs/usr/local/bin/spoon-mux).
Each side keeps at most WINDOW bytes of a connection in flight, so one slow
reader never holds up the other connections. What comes out of the box is
the user's to shape, so a frame too long or a connection sending past its
window ends the tunnel rather than Spoon's memory."""

import asyncio
import collections
import contextlib
import itertools
import logging
import struct

from boxes import processes
from boxes.models import Box

logger = logging.getLogger(__name__)

MUX = "/usr/local/bin/spoon-mux"
HEADER = struct.Struct(">BII")
OPEN, DATA, EOF, CLOSE, ACK, CLOSED, READY, OPENED, LISTEN, UNLISTEN, ACCEPTED = range(1, 12)
ACCEPTED_FROM = 1 << 31  # spoon-mux numbers the connections its listeners accept from here
READY_SECONDS = 10
WINDOW = 1 << 20
CHUNK = 1 << 18
NOTHING_LISTENS = b"nothing listens"


class NothingListens(Exception):
    pass


class Broken(Exception):
    """The box's side broke the frames or the window."""


class Unavailable(Exception):
    """spoon-mux did not start: a box on an image from before it, say."""


class Tunnel:
    """One spoon-mux in one box, and the connections through it."""

    def __init__(self, process: processes.BoxProcess):
        self.process = process
        self.connections: dict[int, Connection] = {}
        self.listeners: dict[int, Listener] = {}
        self.numbers = itertools.count(1)
        self.errors = bytearray()
        self.ready = asyncio.get_running_loop().create_future()
        self.reading = asyncio.create_task(self._read(), name=f"tunnel {process.box.username}")

    @classmethod
    async def open(cls, box: Box) -> "Tunnel":
        """A tunnel once spoon-mux said it runs. Raises EngineError when the
        box or the exec cannot be had, Unavailable when spoon-mux ended first."""
        tunnel = cls(await processes.open_process(box, [MUX], stdin=True))
        try:
            await asyncio.wait_for(asyncio.shield(tunnel.ready), READY_SECONDS)
        except (TimeoutError, Unavailable):
            tunnel.close()
            why = tunnel.errors.decode(errors="replace").strip() or "no answer"
            raise Unavailable(f"spoon-mux did not start in {box.container_name}: {why}") from None
        except asyncio.CancelledError:
            tunnel.close()
            raise
        return tunnel

    def alive(self) -> bool:
        return not self.reading.done()

    def connect(self, port: int) -> "Connection":
        """A connection to port; bytes written now go once it is made. Its
        read() raises NothingListens if nothing listens there."""
        number = next(self.numbers)
        connection = self.connections[number] = Connection(self, number)
        if not self.alive():
            connection.ended(b"")
        else:
            self.send(OPEN, number, str(port).encode())
        return connection

    def listen(self, path: str) -> "Listener":
        """A UNIX socket at path in the box (its folder made private to the
        box user); connections to it come out of Listener.accept()."""
        number = next(self.numbers)
        listener = self.listeners[number] = Listener(self, number)
        self.send(LISTEN, number, path.encode())
        return listener

    def send(self, kind: int, number: int, payload: bytes = b"") -> None:
        if self.alive():
            self.process.write(HEADER.pack(kind, number, len(payload)) + payload)

    async def drain(self) -> None:
        await self.process.drain()

    def close(self) -> None:
        """Ends every connection: spoon-mux ends with its input."""
        with contextlib.suppress(OSError, RuntimeError):
            self.process.close_input()
        self.process.close()
        self.reading.cancel()

    async def _read(self) -> None:
        buffer = bytearray()
        try:
            while True:
                stream, data = await self.process.read_tagged()
                if not data:
                    break
                if stream == processes.STDERR:
                    self.errors += data[: 4096 - len(self.errors)]
                    continue
                buffer += data
                while len(buffer) >= HEADER.size:
                    kind, number, length = HEADER.unpack_from(buffer)
                    if length > CHUNK:
                        raise Broken(f"a frame of {length} bytes")
                    if len(buffer) < HEADER.size + length:
                        break
                    with memoryview(buffer) as view:  # one copy, not two
                        payload = bytes(view[HEADER.size : HEADER.size + length])
                    del buffer[: HEADER.size + length]
                    self._received(kind, number, payload)
        except OSError as exc:
            logger.info("tunnel into %s ended: %s", self.process.box.container_name, exc)
        except Broken as exc:
            logger.warning("tunnel into %s closed: %s", self.process.box.container_name, exc)
        finally:
            if not self.ready.done():
                self.ready.set_exception(Unavailable())
                self.ready.exception()  # retrieved: open() may not be waiting
            if self.errors:
                logger.warning(
                    "tunnel into %s: %s",
                    self.process.box.container_name,
                    self.errors.decode(errors="replace").strip(),
                )
            for connection in list(self.connections.values()):
                connection.ended(b"")
            for listener in self.listeners.values():
                listener.accepted.put_nowait(None)
            self.process.close()

    def _received(self, kind: int, number: int, payload: bytes) -> None:
        if kind == READY and not self.ready.done():
            self.ready.set_result(None)
        if kind == ACCEPTED:
            if len(payload) != 4 or number < ACCEPTED_FROM or number in self.connections:
                raise Broken("an accepted connection numbered as no listener's")
            listener = self.listeners.get(struct.unpack(">I", payload)[0])
            if listener is None:  # closed while the connection came
                self.send(CLOSE, number)
                return
            connection = self.connections[number] = Connection(self, number)
            connection.made()
            listener.accepted.put_nowait(connection)
            return
        connection = self.connections.get(number)
        if connection is None:
            return  # closed here meanwhile: what was in flight is dropped
        if kind == OPENED:
            connection.made()
        elif kind == DATA:
            connection.arrived(payload)
            if connection.unread > WINDOW:
                raise Broken("a connection sent past its window")
        elif kind == ACK:
            if len(payload) != 4:
                raise Broken("an ACK of the wrong size")
            connection.took(struct.unpack(">I", payload)[0])
        elif kind == CLOSED:
            del self.connections[number]
            connection.ended(payload)


class Listener:
    """A UNIX socket in the box whose connections come through the tunnel."""

    def __init__(self, tunnel: Tunnel, number: int):
        self.tunnel = tunnel
        self.number = number
        self.accepted: asyncio.Queue[Connection | None] = asyncio.Queue(maxsize=0)

    async def accept(self) -> "Connection | None":
        """The next connection to the socket; None once the tunnel ended."""
        return await self.accepted.get()

    def close(self) -> None:
        """The socket goes; connections made through it stay until they end."""
        if self.tunnel.listeners.pop(self.number, None) is not None:
            self.tunnel.send(UNLISTEN, self.number)
            self.accepted.put_nowait(None)


class Connection:
    """One TCP connection through a tunnel: read(), write(), drain(), close()."""

    def __init__(self, tunnel: Tunnel, number: int):
        self.tunnel = tunnel
        self.number = number
        self.chunks: collections.deque[bytes] = collections.deque()
        self.changed = asyncio.Event()
        self.over: bytes | None = None  # why it ended, once it did
        self.unacked = 0  # written, not yet taken by the server
        self.unread = 0  # arrived, not yet read
        self.untold = 0  # read, not yet ACKed
        self.connected = False

    async def opened(self) -> None:
        """Wait until the connection is made (bytes may be written before).
        Raises NothingListens, or ConnectionResetError if the tunnel ended."""
        while not self.connected:
            if self.over == NOTHING_LISTENS:
                raise NothingListens()
            if self.over is not None:
                raise ConnectionResetError("the tunnel into the box ended")
            self.changed.clear()
            await self.changed.wait()

    async def read(self) -> bytes:
        """The next bytes from the server; b"" once it closed."""
        while not self.chunks:
            if self.over is not None:
                if self.over == NOTHING_LISTENS:
                    raise NothingListens()
                return b""
            self.changed.clear()
            await self.changed.wait()
        data = self.chunks.popleft()
        self.unread -= len(data)
        self.untold += len(data)
        if self.untold >= WINDOW // 4:
            self.tunnel.send(ACK, self.number, struct.pack(">I", self.untold))
            self.untold = 0
        return data

    def write(self, data: bytes) -> None:
        """Queue bytes for the server; drain() waits until the window allows
        more. Once the connection is over they are dropped: a server may
        answer and close before it read everything (a 413 to an upload), and
        read() still gives its answer."""
        if self.over is not None:
            return
        for start in range(0, len(data), CHUNK):
            piece = data[start : start + CHUNK]
            self.unacked += len(piece)
            self.tunnel.send(DATA, self.number, piece)

    async def drain(self) -> None:
        while self.unacked > WINDOW and self.over is None:
            self.changed.clear()
            await self.changed.wait()
        if self.over is None:
            await self.tunnel.drain()

    def close_input(self) -> None:
        """The server reads the end of its input; its answer still comes."""
        self.tunnel.send(EOF, self.number)

    def close(self) -> None:
        if self.tunnel.connections.pop(self.number, None) is not None and self.over is None:
            self.tunnel.send(CLOSE, self.number)
        self.ended(b"")

    def ended(self, why: bytes) -> None:
        if self.over is None:
            self.over = why
        self.changed.set()

    def made(self) -> None:
        self.connected = True
        self.changed.set()

    def arrived(self, data: bytes) -> None:
        self.chunks.append(data)
        self.unread += len(data)
        self.changed.set()

    def took(self, count: int) -> None:
        self.unacked -= count
        self.changed.set()
