"""The SSH gateway: `ssh -p 2222 alice@spoon` opens alice's box. asyncssh
serves SSH on SPOON_SSH_BIND:SPOON_SSH_PORT (manage.py sshgateway); every
session is a process in the box opened through the stream primitive, held
with an ssh lease that only its traffic keeps up, as a terminal's is.

  - no command: a login shell (bash -l), on a TTY when the client asks
    for one (its type, size and size changes);
  - a command: bash -c COMMAND, stdout and stderr apart, its exit status;
  - the sftp subsystem: the box's sftp-server (so sftp and scp work; rsync
    and `scp -O` run as commands).

Public keys only (Settings -> SSH keys). An unknown user and a wrong key
get the same answer; failures are throttled per source address
(ssh.throttle); a user made inactive is refused at the next login. The
user name picks the box, so no login reaches another user's box, staff
included."""

import asyncio
import contextlib
import logging
import re

import asyncssh
from django.conf import settings

from boxes import docker_engine, leases, processes
from boxes.models import Lease
from boxes.use import using_box_async
from ssh import accounts, keys, throttle

logger = logging.getLogger(__name__)

SFTP_SERVER = "/usr/lib/openssh/sftp-server"
PASSED_ENV = re.compile(r"LANG|LC_[A-Z_]+|COLORTERM")  # what clients send with SendEnv
READ_SIZE = 65536


class Gateway(asyncssh.SSHServer):
    """One client connection: who it is, once a key of theirs proved it."""

    def __init__(self):
        self.connection: asyncssh.SSHServerConnection | None = None
        self.peer = "unknown"
        self.key = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.connection = conn
        self.peer = str((conn.get_extra_info("peername") or ("unknown",))[0])

    def begin_auth(self, username: str) -> bool:
        return True  # always: there is no user without a key

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if throttle.refused(self.peer):
            logger.warning("ssh: refused %s: too many failed logins", self.peer)
            return False
        found = await asyncio.to_thread(
            accounts.key_for, username, keys.fingerprint(key.public_data)
        )
        if found is None:
            throttle.failed(self.peer)
            return False
        self.key = found
        return True

    def auth_completed(self) -> None:
        key = self.key
        logger.info("ssh: %s signed in from %s with key %s", key.user, self.peer, key.fingerprint)
        self.connection.set_extra_info(spoon_key=key)
        asyncio.get_running_loop().run_in_executor(None, accounts.used, key)


async def serve_session(process: asyncssh.SSHServerProcess) -> None:
    key = process.get_extra_info("spoon_key")
    peer = process.get_extra_info("peername", ("unknown",))[0]
    try:
        async with using_box_async(key.user, Lease.Kind.SSH, f"ssh from {peer}") as box:
            process.exit(await bridge(process, box))
    except docker_engine.EngineError as exc:
        process.stderr.write(f"spoon: your box could not be had: {exc}\r\n".encode())
        process.exit(255)
    except Exception:
        logger.exception("ssh: a session of %s failed", key.user)
        process.exit(255)


def wanted(process: asyncssh.SSHServerProcess) -> tuple[list[str], bool]:
    """What to run in the box, and whether on a TTY."""
    tty = process.term_type is not None
    if process.subsystem == "sftp":
        return [SFTP_SERVER], False
    if process.subsystem:
        raise ValueError(f"no such subsystem: {process.subsystem}")
    if process.command is not None:
        return ["bash", "-c", process.command], tty
    return ["bash", "-l"], tty


async def bridge(process: asyncssh.SSHServerProcess, box) -> int:
    """Join the SSH channel to a process in the box until it ends; its exit status."""
    try:
        argv, tty = wanted(process)
    except ValueError as exc:
        process.stderr.write(f"spoon: {exc}\r\n".encode())
        return 255
    env = {name: value for name, value in process.env.items() if PASSED_ENV.fullmatch(name)}
    size = None
    if tty:
        env["TERM"] = process.term_type or "xterm-256color"
        cols, rows = process.term_size[:2]
        size = (cols or 80, rows or 24)
    inside = await processes.open_process(box, argv, tty=tty, env=env, stdin=True, size=size)

    def traffic() -> None:
        if leases.activity_due(box):
            asyncio.get_running_loop().run_in_executor(None, leases.touch, box)

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
            traffic()
            inside.write(data)
            await inside.drain()

    async def to_client() -> None:
        while True:
            stream, data = await inside.read_tagged()
            if not data:
                return
            traffic()
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
        process_factory=serve_session,
        encoding=None,
        line_editor=False,
        x11_forwarding=False,
        agent_forwarding=False,
        allow_scp=False,
        login_timeout=60,
        keepalive_interval=30,
    )
