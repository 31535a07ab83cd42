"""The box side of a terminal: a tmux client in a `docker exec` with a TTY.

tmux owns the session, so a reload or a second tab attaches to the same shell
and tmux redraws the screen. Closing ends the tmux client's exec session
(spoon-kill); the tmux server, a daemon in its own session, stays until the
box stops.
"""

import asyncio
import uuid

from django.conf import settings

from boxes import commands, docker_engine
from boxes.models import Box

# Sets the PTY's size before tmux starts, so the first prompt fits (this
# engine's API cannot pass a console size when the exec is created), and
# brings a running tmux server's environment up to date with the user's
# secrets (named in SPOON_SECRET_NAMES), so new windows and panes get them.
ATTACH = r"""
stty cols "$1" rows "$2" 2>/dev/null
if tmux has-session 2>/dev/null; then
    old=$(tmux show-environment -g SPOON_SECRET_NAMES 2>/dev/null | sed 's/^[^=]*=//')
    for name in $old; do
        case " ${SPOON_SECRET_NAMES:-} " in
        *" $name "*) ;;
        *) tmux set-environment -gu "$name" ;;
        esac
    done
    for name in ${SPOON_SECRET_NAMES:-}; do
        eval "value=\${$name-}"
        tmux set-environment -g "$name" "$value"
    done
    tmux set-environment -g SPOON_SECRET_NAMES "${SPOON_SECRET_NAMES:-}"
fi
exec tmux new-session -A -s "$3" -c "$4"
"""


class BoxTerminal:
    def __init__(self, box: Box, session: str, cwd: str):
        self.box = box
        self.session = session
        self.cwd = cwd
        self.token = uuid.uuid4().hex
        self.exec_id: str | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def start(self, cols: int, rows: int) -> None:
        argv = ["sh", "-c", ATTACH, "attach", str(cols), str(rows), self.session, self.cwd]

        def create():
            env = commands.environment(
                self.box, {"TERM": "xterm-256color", "COLORTERM": "truecolor"}
            )
            return docker_engine.exec_create(
                self.box.container_name,
                ["/usr/local/bin/spoon-exec", self.token, self.box.home, *argv],
                user=str(settings.SPOON_BOX_UID),
                environment=env,
                tty=True,
                stdin=True,
            )

        self.exec_id = await asyncio.to_thread(create)
        self.reader, self.writer = await docker_engine.open_exec(self.exec_id, tty=True)
        await self.resize(cols, rows)

    async def resize(self, cols: int, rows: int) -> None:
        if self.exec_id is None:
            return
        for _ in range(20):  # the engine refuses a resize until the exec runs
            try:
                await asyncio.to_thread(docker_engine.exec_resize, self.exec_id, rows, cols)
                return
            except docker_engine.EngineError:
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.exec_id is not None:
            await asyncio.to_thread(commands.kill, self.box, self.token)
