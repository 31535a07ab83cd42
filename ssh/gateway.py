"""The SSH gateway: `ssh -p 2222 alice@spoon` opens alice's box. asyncssh
serves SSH on SPOON_SSH_BIND:SPOON_SSH_PORT (manage.py sshgateway); every
session is a process in the box opened through the stream primitive, held
with an ssh lease that only its traffic keeps up, as a terminal's is.

  - in the home, or in a workspace's folder when the login names it
    (alice+myapp/main starts in ~/Code/myapp/main);
  - no command: a login shell (bash -l), on a TTY when the client asks
    for one (its type, size and size changes);
  - a command: bash -c COMMAND, stdout and stderr apart, its exit status;
  - the sftp subsystem: the box's sftp-server (so sftp and scp work; rsync
    and `scp -O` run as commands);
  - a forwarded connection (ssh -L): to a port on the box's own loopback,
    through the box's tunnel (boxes.tunnels), as previews reach it;
  - the client's agent (ssh -A): a socket in the box, SSH_AUTH_SOCK of the
    session, whose connections go back to the agent through the tunnel.

Public keys only (Settings -> SSH keys). An unknown user and a wrong key
get the same answer; failures are throttled per source address
(ssh.throttle); a user made inactive is refused at the next login. The
user name picks the box, so no login reaches another user's box, staff
included."""

import asyncio
import contextlib
import logging
import re
import uuid

import asyncssh
from asyncssh.constants import EXTENDED_DATA_STDERR
from asyncssh.sftp import MIN_SFTP_VERSION
from asyncssh.stream import SSHReader, SSHWriter
from django.conf import settings

from boxes import docker_engine, leases, processes, tunnels
from boxes.models import Lease
from boxes.use import using_box_async
from ssh import accounts, keys, throttle

logger = logging.getLogger(__name__)

# Debian's sftp server, or Fedora's, whichever the box's image has.
SFTP_SERVER = [
    "sh", "-c", "for s in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server; do "
    '[ -x "$s" ] && exec "$s"; done; echo "spoon: this box has no sftp server" >&2; exit 127',
]  # fmt: skip
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "ip6-localhost")
PASSED_ENV = re.compile(r"LANG|LC_[A-Z_]+|COLORTERM")  # what clients send with SendEnv
READ_SIZE = 65536


class Gateway(asyncssh.SSHServer):
    """One client connection: who it is, once a key of theirs proved it, and
    their box, held (an ssh lease) from its first session or forward until
    the connection ends."""

    def __init__(self):
        self.connection: asyncssh.SSHServerConnection | None = None
        self.peer = "unknown"
        self.key = None
        self.workspace = ""  # a folder under ~/Code to start sessions in, if the login named one
        self.holding: asyncio.Task | None = None
        self.held: asyncio.Future | None = None
        self.tunnel: tunnels.Tunnel | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.connection = conn
        self.peer = str((conn.get_extra_info("peername") or ("unknown",))[0])

    def connection_lost(self, exc: Exception | None) -> None:
        self.let_go()

    def begin_auth(self, username: str) -> bool:
        return True  # always: there is no user without a key

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if throttle.refused(self.peer):
            logger.warning("ssh: refused %s: too many failed logins", self.peer)
            return False
        name, self.workspace = accounts.split_login(username)
        found = await asyncio.to_thread(accounts.key_for, name, keys.fingerprint(key.public_data))
        if found is None:
            throttle.failed(self.peer)
            return False
        self.key = found
        return True

    def session_requested(self) -> "Session":
        return Session()

    def auth_completed(self) -> None:
        key = self.key
        logger.info("ssh: %s signed in from %s with key %s", key.user, self.peer, key.fingerprint)
        self.connection.set_extra_info(spoon_gateway=self)
        asyncio.get_running_loop().run_in_executor(None, accounts.used, key)

    async def box(self):
        """The user's box, held for this connection (started if it was stopped)."""
        if self.holding is None or self.holding.done():
            self.held = asyncio.get_running_loop().create_future()
            self.holding = asyncio.create_task(self._hold(self.held))
        return await asyncio.shield(self.held)

    async def _hold(self, held: asyncio.Future) -> None:
        user = self.key.user
        held.add_done_callback(lambda done: done.cancelled() or done.exception())  # seen
        try:
            async with using_box_async(user, Lease.Kind.SSH, f"ssh from {self.peer}") as box:
                held.set_result(box)
                await asyncio.Event().wait()  # until let_go() cancels it
        except asyncio.CancelledError:
            if not held.done():
                held.set_exception(docker_engine.EngineError("the connection ended"))
            raise
        except Exception as exc:
            if not held.done():
                held.set_exception(exc)

    def box_gone(self) -> None:
        """The box stopped under the connection: the next use holds it anew."""
        self.let_go()

    def let_go(self) -> None:
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
        if self.holding is not None:
            self.holding.cancel()
            self.holding = None

    async def tunnel_into(self, box) -> tunnels.Tunnel:
        if self.tunnel is None or not self.tunnel.alive():
            self.tunnel = await tunnels.Tunnel.open(box)
        return self.tunnel

    async def agent_in(self, box) -> "Agent":
        """The client's agent, at a socket in the box for one session."""
        tunnel = await self.tunnel_into(box)
        return Agent(self.connection, tunnel, f"/tmp/spoon-agent-{uuid.uuid4().hex}/agent.sock")

    def connection_requested(self, dest_host, dest_port, orig_host, orig_port):
        """ssh -L: a connection to a port on the box's own loopback, through its tunnel."""
        if dest_host not in LOOPBACK_NAMES:
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                f"only ports of your box can be reached: use localhost:PORT, not {dest_host}",
            )
        if not 0 < dest_port < 65536:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, "no such port")
        return self.forward(dest_port)

    async def forward(self, port: int) -> "Forward":
        try:
            box = await self.box()
            tunnel = await self.tunnel_into(box)
        except (docker_engine.EngineError, tunnels.Unavailable) as exc:
            self.box_gone()
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_CONNECT_FAILED, f"your box could not be had: {exc}"
            ) from None
        connection = tunnel.connect(port)
        try:
            await connection.opened()
        except tunnels.NothingListens:
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_CONNECT_FAILED,
                f"nothing listens on {port} in your box; servers must listen on "
                "127.0.0.1 or 0.0.0.0",
            ) from None
        except ConnectionError as exc:
            self.box_gone()
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, str(exc)) from None
        return Forward(connection, box)


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

    def connection_made(self, chan) -> None:
        self.channel = chan
        self.pump = asyncio.create_task(self.to_client())

    def data_received(self, data: bytes, datatype) -> None:
        traffic(self.box)
        self.connection.write(data)
        if self.connection.unacked > tunnels.WINDOW:
            self.channel.pause_reading()
            asyncio.create_task(self._resume_when_drained())

    async def _resume_when_drained(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self.connection.drain()
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
                traffic(self.box)
                await self.writable.wait()
                if self.channel is None:
                    return
                self.channel.write(data)
        if self.channel is not None:
            self.channel.close()


def traffic(box) -> None:
    """Activity on the box, written at most every so often."""
    if leases.activity_due(box):
        asyncio.get_running_loop().run_in_executor(None, leases.touch, box)


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


async def start(process: asyncssh.SSHServerProcess, gateway: Gateway, argv, tty):
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


async def bridge(process: asyncssh.SSHServerProcess, gateway: Gateway) -> int:
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
            traffic(box)
            inside.write(data)
            await inside.drain()

    async def to_client() -> None:
        while True:
            stream, data = await inside.read_tagged()
            if not data:
                return
            traffic(box)
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


def host_keys() -> list[str]:
    """The gateway's host keys, made once into the data directory (0600) and kept."""
    folder = settings.DATA_DIR / "ssh"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    made = []
    for name, algorithm in (("host_ed25519_key", "ssh-ed25519"), ("host_rsa_key", "ssh-rsa")):
        path = folder / name
        if not path.exists():
            key = asyncssh.generate_private_key(algorithm)
            path.touch(mode=0o600)
            path.write_bytes(key.export_private_key())
            logger.info("ssh: made the host key %s", path)
        made.append(str(path))
    return made


async def serve(bind: str | None = None, port: int | None = None) -> asyncssh.SSHAcceptor:
    """Start the gateway; the acceptor's close() stops it."""
    return await asyncssh.create_server(
        Gateway,
        bind if bind is not None else settings.SPOON_SSH_BIND,
        port if port is not None else settings.SPOON_SSH_PORT,
        server_host_keys=host_keys(),
        encoding=None,
        line_editor=False,
        x11_forwarding=False,
        agent_forwarding=True,
        allow_scp=False,
        login_timeout=60,
        keepalive_interval=30,
    )
