"""The box side of a terminal: a tmux client in a `docker exec` with a TTY.

tmux owns the session, so a reload or a second tab attaches to the same shell
and tmux redraws the screen. Closing ends the tmux client's exec session
(spoon-kill); the tmux server, a daemon in its own session, stays until the
box stops.
"""

from boxes.models import Box
from boxes.processes import BoxProcess, open_process

# Brings a running tmux server's environment up to date with the user's
# secrets (named in SPOON_SECRET_NAMES), so new windows and panes get them:
# each value goes to tmux through a pipe, as a command in tmux's double
# quotes (\, " and $ escaped, line breaks as \n), never on a command line,
# which anyone on the host could read in the process list. Then attaches
# the tab. A folder's shells are a group of tmux sessions
# ($1: main, or ws-<id> for a workspace) sharing their windows; each browser
# tab ($4) has a session of its own in the group, showing a window of its own
# (marked @spoon-tab), so each keeps its own size while all reach every
# window. A reload finds its tab's window again. Staff who only watch ($3)
# see the window where something happened last, through a client tmux takes
# no keys from. (open_process sizes the TTY first, so the first prompt fits.)
ATTACH = r"""
group=$1 dir=$2 mode=$3 tab=$4
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
        printf 'set-environment -g %s "' "$name"
        printf '%s' "$value" | sed -e 's/[\\"$]/\\&/g' -e ':a' -e '$!N' -e '$!ba' -e 's/\n/\\n/g'
        printf '"\n'
    done | tmux source-file -
    tmux set-environment -g SPOON_SECRET_NAMES "${SPOON_SECRET_NAMES:-}"
fi
if ! tmux has-session -t "=$group" 2>/dev/null; then
    tmux new-session -d -s "$group" -c "$dir"
    tmux set-option -w -t "=$group:" @spoon-tab "$tab"
fi
session="$group-$tab"
if ! tmux has-session -t "=$session" 2>/dev/null; then
    tmux new-session -d -t "=$group" -s "$session"
    tmux set-option -t "=$session" destroy-unattached on
fi
if [ "$mode" = read-only ]; then
    window=$(tmux list-windows -t "=$session" -F '#{window_activity} #{window_id}' |
        sort -rn | awk 'NR == 1 { print $2 }')
    tmux select-window -t "=$session:$window"
    exec tmux attach-session -r -t "=$session"
fi
window=$(tmux list-windows -t "=$session" -F '#{window_id} #{@spoon-tab}' |
    awk -v tab="$tab" '$2 == tab { print $1; exit }')
if [ -z "$window" ]; then
    window=$(tmux new-window -d -P -F '#{window_id}' -t "=$session:" -c "$dir")
    tmux set-option -w -t "$window" @spoon-tab "$tab"
fi
tmux select-window -t "=$session:$window"
exec tmux attach-session -t "=$session"
"""


TERMINAL_ENVIRONMENT = {"TERM": "xterm-256color", "COLORTERM": "truecolor"}


async def attach(
    box: Box,
    group: str,
    cwd: str,
    cols: int,
    rows: int,
    tab: str = "0",
    read_only: bool = False,
) -> BoxProcess:
    """A tmux client for a browser tab, on its own window of the group's
    sessions (made in cwd when new), on a TTY of cols x rows; read_only, a
    client tmux takes no keys from. Its end() ends the client; the tmux
    server, and the tab's shell, stay."""
    mode = "read-only" if read_only else "typing"
    argv = ["sh", "-c", ATTACH, "attach", group, cwd, mode, tab]
    return await open_process(box, argv, tty=True, env=TERMINAL_ENVIRONMENT, size=(cols, rows))
