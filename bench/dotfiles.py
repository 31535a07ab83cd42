#!/usr/bin/env python3
"""bench/dotfiles: what applying dotfiles costs in a real box.

    .venv/bin/python bench/dotfiles.py [--files 200] [--rounds 7]

Measures an apply that writes FILES overlay files (each a changed set) and a
no-op apply (nothing changed since the last one), next to a bare `docker
exec` of `true` in the same box, measured in the same run.
"""

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sandbox  # noqa: E402  (bench/ is not a package)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)

    data_dir, instance = sandbox.start(SPOON_DOTFILES_APPLY_ON_START="false")
    from django.contrib.auth import get_user_model

    from boxes import docker_engine, lifecycle
    from dotfiles import files, materialize
    from dotfiles.models import DotfilesRun

    try:
        user = get_user_model().objects.create_user(f"bench{uuid.uuid4().hex[:6]}")
        box = lifecycle.ensure_box(user)
        exec_true = []
        for _ in range(args.rounds * 3):
            started = time.perf_counter()
            docker_engine.exec_run(box.container_name, ["true"], user="1000")
            exec_true.append(time.perf_counter() - started)

        full, noop = [], []
        for round_ in range(args.rounds):
            for i in range(args.files):
                folder = f".config/bench{i % 10}"
                content = f"# round {round_}, file {i}\n".encode() * 40
                files.save_file(user, f"{folder}/file{i}.conf", content, executable=i % 7 == 0)
            started = time.perf_counter()
            run = materialize.apply(box, DotfilesRun.Trigger.FILES_SAVED, files_only=True)
            full.append(time.perf_counter() - started)
            assert run.status == "succeeded", run.log
            started = time.perf_counter()
            run = materialize.apply(box, DotfilesRun.Trigger.BOX_START)
            noop.append(time.perf_counter() - started)
            assert {"step": "overlay", "skipped": "unchanged"} in run.steps, run.steps
    finally:
        sandbox.finish(data_dir, instance)

    baseline = statistics.median(exec_true)
    print(f"\nbench/dotfiles  (engine {docker_engine.version()}, {args.rounds} rounds)\n")
    print("| {:<40} | {:>9} | {:>7} | {:<22} | {:<9} |".format(
        "measure", "median s", "max s", "vs one docker exec", "target"))  # fmt: skip
    print(f"|{'-' * 42}|{'-' * 11}|{'-' * 9}|{'-' * 24}|{'-' * 11}|")
    for name, values, target in (
        ("docker exec of true (baseline)", exec_true, ""),
        (f"apply writing {args.files} overlay files", full, "<= 1 s"),
        ("apply with nothing changed", noop, "<= 0.1 s"),
    ):
        median = statistics.median(values)
        ratio = f"{median / baseline:.1f}x"
        print(f"| {name:<40} | {median:>9.4f} | {max(values):>7.4f} | {ratio:<22} | {target:<9} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
