#!/usr/bin/env python3
"""bench/prompt: how long Spoon's shell prompt takes in a large git checkout.

    .venv/bin/python bench/prompt.py [--files 50000] [--rounds 30]

In a real box: a checkout of FILES files in 500 folders, one commit; then the
prompt function (/usr/local/share/spoon/interactive.sh) timed ROUNDS times
inside bash in it clean and with its last file changed, next to `git status`
in the same checkout and the prompt outside any checkout, measured in the
same run. Target: 50 ms.
"""

import argparse
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sandbox  # noqa: E402  (bench/ is not a package)

MAKE_CHECKOUT = r"""
set -e
rm -rf ~/big && mkdir -p ~/big && cd ~/big && git init -q
git config user.email bench@spoon && git config user.name bench
i=0
while [ $i -lt "$1" ]; do
    d=dir$((i % 500)); mkdir -p $d; echo "file $i" > $d/f$i.txt; i=$((i + 1))
done
git add -A && git commit -qm big
"""
CHANGE = r"echo changed >> ~/big/dir$((($1 - 1) % 500))/f$(($1 - 1)).txt"
# Median milliseconds of $2 run $1 times, measured inside one bash.
TIME = r"""
. /usr/local/share/spoon/interactive.sh
cd "$3"
times=()
for _ in $(seq "$1"); do
    s=$EPOCHREALTIME; eval "$2" >/dev/null 2>&1; e=$EPOCHREALTIME
    times+=("$(( (${e/./} - ${s/./}) ))")
done
printf '%s\n' "${times[@]}" | sort -n |
    awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] / 1000 }'
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)

    data_dir, instance = sandbox.start(SPOON_DOTFILES_APPLY_ON_START="false")
    from django.contrib.auth import get_user_model

    from boxes import commands, lifecycle

    def median_ms(command: str, folder: str) -> float:
        script = ["bash", "-c", TIME, "time", str(args.rounds), command, folder]
        result = commands.run(box, script, timeout=600)
        assert result.ok, (result.error, result.output[-500:])
        return float(result.output.split()[-1])

    try:
        user = get_user_model().objects.create_user(f"bench{uuid.uuid4().hex[:6]}")
        box = lifecycle.ensure_box(user)
        made = commands.run(box, ["sh", "-c", MAKE_CHECKOUT, "make", str(args.files)], timeout=1800)
        assert made.ok, made.output[-500:]
        checkout = f"{box.home}/big"
        rows = [
            ("the prompt, outside any checkout", median_ms("__spoon_prompt", box.home)),
            (f"the prompt, {args.files} files, clean", median_ms("__spoon_prompt", checkout)),
        ]
        commands.run(box, ["sh", "-c", CHANGE, "change", str(args.files)])
        changed = f"the prompt, {args.files} files, one changed"
        rows.append((changed, median_ms("__spoon_prompt", checkout)))
        rows.append(("git status, same checkout (baseline)", median_ms("git status", checkout)))
    finally:
        sandbox.finish(data_dir, instance)

    print(f"\nbench/prompt  (median of {args.rounds}, inside bash in a box)\n")
    print("| measure                                           |   ms | target  |")
    print("|---------------------------------------------------|------|---------|")
    for name, ms in rows:
        target = "<= 50" if "files" in name and name.startswith("the prompt") else ""
        print(f"| {name:49} | {ms:4.1f} | {target:7} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
