"""The SSH gateway: `ssh -p 2222 alice@spoon` opens alice's box. asyncssh
serves SSH on SPOON_SSH_BIND:SPOON_SSH_PORT (manage.py sshgateway); each
connection holds the user's box (an ssh lease that only its traffic keeps
up, as a terminal's) while it lasts; its sessions are processes in the box
(ssh.sessions), its forwards and agent go through the box's tunnel
(ssh.forwarding).

Public keys only (Settings -> SSH keys). An unknown user and a wrong key
get the same answer; failures are throttled per source address
(ssh.throttle); a user made inactive is refused at the next login. The
user name picks the box, so no login reaches another user's box, staff
included."""

import asyncio
import logging
import uuid

import asyncssh
from django.conf import settings

from boxes import docker_engine, tunnels
from boxes.models import Lease
from boxes.use import using_box_async
from ssh import accounts, keys, sessions, throttle
from ssh.forwarding import Agent, Forward

logger = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "ip6-localhost")


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

    def session_requested(self) -> sessions.Session:
        return sessions.Session()

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
