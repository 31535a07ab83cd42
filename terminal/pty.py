"""The box side of a terminal: a tmux client in a `docker exec` with a TTY.

tmux owns the session, so a reload or a second tab attaches to the same shell
and tmux redraws the screen. Closing ends the tmux client's exec session
(spoon-kill); the tmux server, a daemon in its own session, stays until the
box stops.
"""

from boxes.models import Box
from boxes.processes import BoxProcess, open_process

# Brings a running tmux server's environment up to date with the user's
# secrets (named in SPOON_SECRET_NAMES), so new windows and panes get them,
# then attaches: a client that takes no keys for staff who only watch.
# (open_process sizes the TTY first, so the first prompt fits.)
ATTACH = r"""
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
if [ "${3:-}" = read-only ]; then
    tmux has-session -t "=$1" 2>/dev/null || tmux new-session -d -s "$1" -c "$2"
    exec tmux attach-session -r -t "=$1"
fi
exec tmux new-session -A -s "$1" -c "$2"
"""


TERMINAL_ENVIRONMENT = {"TERM": "xterm-256color", "COLORTERM": "truecolor"}


async def attach(
    box: Box, session: str, cwd: str, cols: int, rows: int, read_only: bool = False
) -> BoxProcess:
    """A tmux client attached to session (made in cwd if new), on a TTY of
    cols x rows; read_only, a client tmux takes no keys from. Its end() ends
    the client; the tmux server stays."""
    mode = "read-only" if read_only else "typing"
    argv = ["sh", "-c", ATTACH, "attach", session, cwd, mode]
    return await open_process(box, argv, tty=True, env=TERMINAL_ENVIRONMENT, size=(cols, rows))
