#!/usr/bin/env python3
"""bench/tmux_memory: what a terminal's scrollback costs the box's tmux server.

    .venv/bin/python bench/tmux_memory.py [--megabytes 50] [--limits 2000,10000,50000]

In a real box, for each history limit: a tmux server of its own, a pane that
prints MEGABYTES of 100-column text lines, and the server's resident memory
once it has it all; next to the same server holding an empty pane, measured
in the same run (the baseline). The job image's tmux.conf sets the limit
this chooses (see the README's terminal section for the target).
"""

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sandbox  # noqa: E402  (bench/ is not a package)

# A server on its own socket, a pane with this history limit printing the
# text, then the server's RSS (KB) once the pane is done.
MEASURE = r"""
set -e
sock=bench-$1 limit=$1 megabytes=$2
tmux -L "$sock" -f /dev/null new-session -d -x 100 -y 40 \; set -g history-limit "$limit"
text="head -c $((megabytes * 1048576)) /dev/zero | tr '\0' x | fold -w 99"
tmux -L "$sock" new-window -d -n out "$text; echo BENCH-DONE; sleep 600"
if [ "$megabytes" -gt 0 ]; then
    until tmux -L "$sock" capture-pane -p -t :out | grep -q BENCH-DONE; do sleep 0.5; done
fi
sleep 1
pid=$(tmux -L "$sock" display -p '#{pid}')
ps -o rss= -p "$pid"
tmux -L "$sock" kill-server
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--limits", default="2000,10000,50000")
    args = parser.parse_args(argv)
    limits = [int(limit) for limit in args.limits.split(",")]

    data_dir, instance = sandbox.start(SPOON_DOTFILES_APPLY_ON_START="false")
    from django.contrib.auth import get_user_model

    from boxes import commands, lifecycle

    def rss_kb(limit: int, megabytes: int) -> tuple[int, float]:
        started = time.monotonic()
        script = ["sh", "-c", MEASURE, "measure", str(limit), str(megabytes)]
        result = commands.run(box, script, timeout=1800)
        assert result.ok, (result.error, result.output[-500:])
        return int(result.output.split()[-1]), time.monotonic() - started

    try:
        user = get_user_model().objects.create_user(f"bench{uuid.uuid4().hex[:6]}")
        box = lifecycle.ensure_box(user)
        empty, _ = rss_kb(limits[-1], 0)
        rows = [(limit, *rss_kb(limit, args.megabytes)) for limit in limits]
    finally:
        sandbox.finish(data_dir, instance)

    print(f"\nbench/tmux_memory  ({args.megabytes} MB of 100-column lines through one pane)\n")
    print("| history limit (lines) | tmux server RSS | over an empty pane | seconds |")
    print("|-----------------------|-----------------|--------------------|---------|")
    print(f"| (empty pane, baseline) | {empty / 1024:13.1f} MB | {'':18} | {'':7} |")
    for limit, kb, seconds in rows:
        over = (kb - empty) / 1024
        print(f"| {limit:21} | {kb / 1024:12.1f} MB | {over:15.1f} MB | {seconds:7.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
