"""SSH sessions: each a process in the box, opened through the stream
primitive, joined to the SSH channel until it ends.

  - in the home, or in a workspace's folder when the login names it
    (alice+myapp/main starts in ~/Code/myapp/main);
  - no command: a login shell (bash -l), on a TTY when the client asks
    for one (its type, size and size changes);
  - a command: bash -c COMMAND, stdout and stderr apart, its exit status;
  - the sftp subsystem: the box's sftp-server (so sftp and scp work; rsync
    and `scp -O` run as commands);
  - with ssh -A, SSH_AUTH_SOCK is the client's agent (ssh.forwarding)."""

import asyncio
import contextlib
import logging
import re
from typing import TYPE_CHECKING

import asyncssh
from asyncssh.constants import EXTENDED_DATA_STDERR
from asyncssh.sftp import MIN_SFTP_VERSION
from asyncssh.stream import SSHReader, SSHWriter

from boxes import docker_engine, leases, processes, tunnels
from ssh import accounts

if TYPE_CHECKING:  # the gateway imports this module
    from ssh.gateway import Gateway

logger = logging.getLogger(__name__)

# Debian's sftp server, or Fedora's, whichever the box's image has.
SFTP_SERVER = [
    "sh", "-c", "for s in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server; do "
    '[ -x "$s" ] && exec "$s"; done; echo "spoon: this box has no sftp server" >&2; exit 127',
]  # fmt: skip
PASSED_ENV = re.compile(r"LANG|LC_[A-Z_]+|COLORTERM")  # what clients send with SendEnv
READ_SIZE = 65536


class Session(asyncssh.SSHServerProcess):
    """A session channel, served by serve_session: its subsystem too, since
    sftp is the box's own sftp-server (asyncssh keeps the name "sftp" for
    an SFTP server of its own, which would serve this host's files)."""

    def __init__(self):
        super().__init__(serve_session, None, MIN_SFTP_VERSION, False)

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == "sftp"

    def session_started(self) -> None:
        # asyncssh's own, but for its sftp branch (asyncssh 2: pinned below 3)
        stdin = SSHReader(self, self._chan)
        stdout = SSHWriter(self, self._chan)
        stderr = SSHWriter(self, self._chan, EXTENDED_DATA_STDERR)
        self._conn.create_task(self._start_process(stdin, stdout, stderr), stdin.logger)


async def serve_session(process: asyncssh.SSHServerProcess) -> None:
    gateway = process.get_extra_info("spoon_gateway")
    try:
        process.exit(await bridge(process, gateway))
    except docker_engine.EngineError as exc:
        process.stderr.write(f"spoon: your box could not be had: {exc}\r\n".encode())
        process.exit(255)
    except Exception:
        logger.exception("ssh: a session of %s failed", gateway.key.user)
        process.exit(255)


async def start(process: asyncssh.SSHServerProcess, gateway: "Gateway", argv, tty):
    """The process in the box, and the box; once more on a box held anew if
    the one held went away meanwhile (stopped while the connection idled)."""
    env = {name: value for name, value in process.env.items() if PASSED_ENV.fullmatch(name)}
    size = None
    if tty:
        env["TERM"] = process.term_type or "xterm-256color"
        cols, rows = process.term_size[:2]
        size = (cols or 80, rows or 24)
    for attempt in (1, 2):
        box = await gateway.box()
        cwd = accounts.workspace_folder(box.home, gateway.workspace) if gateway.workspace else None
        agent = None
        try:
            if process.channel.get_agent_path():  # the client asked to forward its agent
                agent = await gateway.agent_in(box)
                env["SSH_AUTH_SOCK"] = agent.path
            inside = await processes.open_process(
                box, argv, tty=tty, env=env, cwd=cwd, stdin=True, size=size
            )
            return inside, box, agent
        except (docker_engine.EngineError, tunnels.Unavailable):
            if agent is not None:
                agent.close()
            gateway.box_gone()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def wanted(process: asyncssh.SSHServerProcess) -> tuple[list[str], bool]:
    """What to run in the box, and whether on a TTY."""
    tty = process.term_type is not None
    if process.subsystem == "sftp":
        return SFTP_SERVER, False
    if process.subsystem:
        raise ValueError(f"no such subsystem: {process.subsystem}")
    if process.command is not None:
        return ["bash", "-c", process.command], tty
    return ["bash", "-l"], tty


async def bridge(process: asyncssh.SSHServerProcess, gateway: "Gateway") -> int:
    """Join the SSH channel to a process in the box until it ends; its exit status."""
    try:
        argv, tty = wanted(process)
        inside, box, agent = await start(process, gateway, argv, tty)
    except ValueError as exc:
        process.stderr.write(f"spoon: {exc}\r\n".encode())
        return 255

    async def from_client() -> None:
        while True:
            try:
                data = await process.stdin.read(READ_SIZE)
            except asyncssh.TerminalSizeChanged as change:
                await inside.resize(change.width, change.height)
                continue
            except (asyncssh.BreakReceived, asyncssh.SignalReceived):
                await inside.end()
                return
            if not data:
                if not tty:  # a command's input ended; a TTY's ends with the session
                    inside.close_input()
                return
            leases.touch_soon(box)
            inside.write(data)
            await inside.drain()

    async def to_client() -> None:
        while True:
            stream, data = await inside.read_tagged()
            if not data:
                return
            leases.touch_soon(box)
            (process.stderr if stream == processes.STDERR else process.stdout).write(data)
            await process.stdout.drain()

    reading = asyncio.create_task(from_client())
    writing = asyncio.create_task(to_client())
    closed = asyncio.create_task(process.wait_closed())
    await asyncio.wait({writing, closed}, return_when=asyncio.FIRST_COMPLETED)
    if not writing.done():  # the client went away first: nothing of it stays in the box
        await inside.end()
    for task in (reading, writing, closed):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if agent is not None:
        agent.close()
    code = await inside.exit_code()
    inside.close()
    return 255 if code is None else code
