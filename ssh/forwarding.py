"""What an SSH connection carries besides sessions: connections forwarded
to ports of the box (ssh -L), and the client's agent offered in the box
(ssh -A). Both go through the box's tunnel (boxes.tunnels)."""

import asyncio
import contextlib
import logging

import asyncssh

from boxes import leases, tunnels

logger = logging.getLogger(__name__)

READ_SIZE = 65536


class Forward(asyncssh.SSHTCPSession):
    """A forwarded connection: the SSH channel joined to a tunnel connection,
    each side paused while the other cannot take more."""

    def __init__(self, connection: tunnels.Connection, box):
        self.connection = connection
        self.box = box
        self.channel = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.pump: asyncio.Task | None = None
        self.resuming: asyncio.Task | None = None

    def connection_made(self, chan) -> None:
        self.channel = chan
        self.pump = asyncio.create_task(self.to_client())

    def data_received(self, data: bytes, datatype) -> None:
        leases.touch_soon(self.box)
        self.connection.write(data)
        if self.connection.unacked > tunnels.WINDOW and not self.resuming:
            self.channel.pause_reading()
            self.resuming = asyncio.create_task(self._resume_when_drained())

    async def _resume_when_drained(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self.connection.drain()
        self.resuming = None
        if self.channel is not None:
            self.channel.resume_reading()

    def eof_received(self) -> bool:
        self.connection.close_input()
        return True  # the answer may still come

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.connection.close()
        if self.pump is not None:
            self.pump.cancel()
        self.channel = None

    async def to_client(self) -> None:
        with contextlib.suppress(tunnels.NothingListens, ConnectionError):
            while data := await self.connection.read():
                leases.touch_soon(self.box)
                await self.writable.wait()
                if self.channel is None:
                    return
                self.channel.write(data)
        if self.channel is not None:
            self.channel.close()


class Agent:
    """ssh -A: a socket in the box (SSH_AUTH_SOCK of the session) whose every
    connection goes back to the client's agent over its SSH connection."""

    def __init__(self, connection: asyncssh.SSHServerConnection, tunnel, path: str):
        self.connection = connection
        self.path = path
        self.listener = tunnel.listen(path)
        self.serving = asyncio.create_task(self.serve())

    async def serve(self) -> None:
        pipes = set()
        while (inside := await self.listener.accept()) is not None:
            pipe = asyncio.create_task(self.pipe(inside))
            pipes.add(pipe)
            pipe.add_done_callback(pipes.discard)

    async def pipe(self, inside: tunnels.Connection) -> None:
        try:
            reader, writer = await self.connection.open_agent_connection()
        except (asyncssh.Error, OSError) as exc:
            logger.info("ssh: the client's agent could not be reached: %s", exc)
            inside.close()
            return

        async def to_agent() -> None:
            while data := await inside.read():
                writer.write(data)
                await writer.drain()
            writer.write_eof()

        async def from_agent() -> None:
            while data := await reader.read(READ_SIZE):
                inside.write(data)
                await inside.drain()
            inside.close_input()

        done = await asyncio.gather(to_agent(), from_agent(), return_exceptions=True)
        for failed in (d for d in done if isinstance(d, Exception)):
            logger.info("ssh: an agent connection ended: %s", failed)
        inside.close()
        writer.close()

    def close(self) -> None:
        self.listener.close()
        self.serving.cancel()
