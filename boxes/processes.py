"""Processes in a box as asyncio streams: the one way anything opens a stream
into a box. Terminals, runs and dotfiles applies use it; TCP relays (previews,
SSH forwards) are processes like any other, such as `socat STDIO
TCP:127.0.0.1:<port>`, so they need no route from the host to the box.

    process = await open_process(box, ["make", "test"], cwd=folder)
    while data := await process.read():
        ...
    code = await process.exit_code()

A process runs as the box user, in the box's login environment (plus env),
in cwd (the home by default), with a TTY or without one (then stdout and
stderr stay apart: read_tagged()). It takes input only when opened with
stdin=True (always with a TTY). end() really ends it inside the box: the
engine cannot kill an exec, so every process starts under spoon-exec, which
records its session under a token, and spoon-kill, run from a second exec,
ends that session (TERM, then KILL). close() only lets go of the stream and
leaves the process running, as a terminal leaves its tmux server.
"""

import asyncio
import logging
import time
import uuid

from django.conf import settings

from boxes import docker_engine
from boxes.models import Box

logger = logging.getLogger(__name__)

STDOUT, STDERR = docker_engine.STDOUT, docker_engine.STDERR  # what read_tagged() tags with
EXEC_WRAPPER = "/usr/local/bin/spoon-exec"
SIZED = 'stty cols "$1" rows "$2" 2>/dev/null; shift 2; exec "$@"'
KILLER = "/usr/local/bin/spoon-kill"
# Callables (box -> dict) whose variables every process in a box also gets:
# the dotfiles app adds the user's secrets. Boxes know nothing of them.
ENVIRONMENT_PROVIDERS: list = []


def environment(box: Box, extra: dict[str, str] | None = None) -> dict[str, str]:
    """What a process sees: the login environment of /etc/profile.d/spoon.sh,
    so tools installed into the home are found and install there too, plus
    what the providers add. It reads the database: call it off the event loop."""
    home = box.home
    provided = {}
    for provider in ENVIRONMENT_PROVIDERS:
        provided.update(provider(box))
    return {
        **provided,
        "HOME": home,
        "USER": box.username,
        "LOGNAME": box.username,
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "PATH": f"{home}/.local/bin:{home}/.cargo/bin:{home}/go/bin:"
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "NPM_CONFIG_PREFIX": f"{home}/.local",
        "CARGO_HOME": f"{home}/.cargo",
        "GOPATH": f"{home}/go",
        "PIP_BREAK_SYSTEM_PACKAGES": "1",
        **(extra or {}),
    }


async def open_process(
    box: Box,
    argv: list[str],
    *,
    tty: bool = False,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    stdin: bool = False,
    size: tuple[int, int] | None = None,
    token: str | None = None,
) -> "BoxProcess":
    """Start argv in the box and return its stream. size is (cols, rows) of
    the TTY. token names the process for kill() from elsewhere (a cancel
    from another request); a fresh one is made when none is given. Raises
    EngineError when the engine, the box or the exec cannot be had."""
    token = token or uuid.uuid4().hex
    if tty and size:
        # This engine's API cannot size a TTY when the exec is made, and a
        # resize after the start can come after the program looked: so the
        # size is set in the box first, then the program starts.
        argv = ["sh", "-c", SIZED, "sized", str(size[0]), str(size[1]), *argv]

    def create() -> str:
        return docker_engine.exec_create(
            box.container_name,
            [EXEC_WRAPPER, token, cwd or box.home, *argv],
            user=str(settings.SPOON_BOX_UID),
            environment=environment(box, env),
            tty=tty,
            stdin=stdin or tty,
        )

    exec_id = await asyncio.to_thread(create)
    stream = await docker_engine.open_exec(exec_id, tty=tty)
    process = BoxProcess(box, token, exec_id, stream)
    if tty and size:
        await process.resize(*size)
    return process


class BoxProcess:
    """A process in a box: see the module's description."""

    def __init__(self, box: Box, token: str, exec_id: str, stream: docker_engine.ExecStream):
        self.box = box
        self.token = token
        self.exec_id = exec_id
        self.tty = stream.tty
        self._stream = stream
        self._ended = False

    async def read(self) -> bytes:
        """The next output (stdout and stderr together); b"" at the end."""
        return (await self._stream.read())[1]

    async def read_tagged(self) -> tuple[int, bytes]:
        """The next output as (STDOUT or STDERR, bytes); with a TTY all is STDOUT."""
        return await self._stream.read()

    def write(self, data: bytes) -> None:
        """Queue input without waiting: see unsent() and drain()."""
        self._stream.write(data)

    async def drain(self) -> None:
        await self._stream.drain()

    def close_input(self) -> None:
        """The process reads the end of its input."""
        self._stream.write_eof()

    def unsent(self) -> int:
        """Input written and not yet taken by the engine."""
        return self._stream.unsent()

    async def resize(self, cols: int, rows: int) -> None:
        """Set the TTY's size; the engine refuses until the exec runs, so retry a little."""
        for _ in range(20):
            try:
                await asyncio.to_thread(docker_engine.exec_resize, self.exec_id, rows, cols)
                return
            except docker_engine.EngineError:
                await asyncio.sleep(0.01)

    async def exit_code(self) -> int | None:
        """Its exit code once its output ended; None while the engine still
        calls it running a second later."""
        return await asyncio.to_thread(_exit_code, self.exec_id)

    async def end(self) -> None:
        """End the process inside the box, and what it started, and close the stream."""
        self.close()
        if not self._ended:
            self._ended = True
            await asyncio.to_thread(kill, self.box, self.token)

    def close(self) -> None:
        """Let go of the stream; the process runs on until it ends by itself."""
        self._stream.close()


def kill(box: Box, token: str) -> None:
    """End every process the exec recorded under token started (TERM, then
    KILL), from wherever: another thread, request or process. A box that is
    gone has nothing left to end."""
    try:
        docker_engine.exec_run(
            box.container_name, [KILLER, token], user=str(settings.SPOON_BOX_UID)
        )
    except docker_engine.EngineError as exc:
        logger.warning("could not end exec %s in %s: %s", token, box.container_name, exc)


def _exit_code(exec_id: str) -> int | None:
    # The output can end a moment before the engine records the exit.
    for _ in range(100):
        code = docker_engine.exec_exit_code(exec_id)
        if code is not None:
            return code
        time.sleep(0.01)
    return None
