#!/usr/bin/env python3
"""bench/boxes: how fast boxes come up and how cheap a reap pass is.

    .venv/bin/python bench/boxes.py [--rounds 7] [--warm 200] [--rows 500] [--containers 100]

Measures, in one run against the real engine and next to the baseline:
cold ensure (no container) against `docker run` + `docker exec` of the same
image with the docker CLI; warm ensure; and `reapboxes` over ROWS box rows
of which CONTAINERS have running containers, once with all of them in use
and once with all of them idle. Everything runs in a throwaway data
directory and installation id, and is removed afterwards.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sandbox  # noqa: E402  (bench/ is not a package)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def p95(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warm", type=int, default=200)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--containers", type=int, default=100)
    args = parser.parse_args(argv)

    data_dir, instance = sandbox.start()

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.utils import timezone

    from boxes import docker_engine, lifecycle, reaper
    from boxes.models import Box

    image = settings.SPOON_JOB_IMAGE
    docker = shutil.which("docker")
    User = get_user_model()
    rows = []

    try:
        # Baseline: the docker CLI's own run + exec of the same image.
        raw = []
        for i in range(args.rounds):
            name = f"spoon-bench-raw-{instance}-{i}"
            run = [
                docker,
                "run",
                "-d",
                "--name",
                name,
                "--network",
                "none",
                "--label",
                f"spoon.instance={instance}",
                "-e",
                "SPOON_USER=bench",
                image,
            ]
            raw.append(
                timed(
                    lambda run=run, name=name: (
                        subprocess.run(run, check=True, capture_output=True),
                        subprocess.run(
                            [docker, "exec", name, "true"], check=True, capture_output=True
                        ),
                    )
                )
            )
            docker_engine.remove_container(name)

        cold = []
        for i in range(args.rounds):
            user = User.objects.create_user(f"cold{i}")
            cold.append(timed(lambda user=user: lifecycle.ensure_box(user)))
            box = Box.objects.get(user=user)
            docker_engine.remove_container(box.container_name)
            docker_engine.remove_volume(box.volume_name)

        warm_user = User.objects.create_user("warm")
        lifecycle.ensure_box(warm_user)
        warm = [timed(lambda: lifecycle.ensure_box(warm_user)) for _ in range(args.warm)]

        raw_median = statistics.median(raw)
        rows += [
            ("docker run + docker exec (CLI)", raw_median, p95(raw), "baseline", ""),
            (
                "cold ensure_box",
                statistics.median(cold),
                p95(cold),
                f"{statistics.median(cold) / raw_median:.2f}x baseline",
                "<= 1.3x",
            ),
            ("warm ensure_box", statistics.median(warm), p95(warm), "", "< 0.020 s"),
        ]

        # Reap: ROWS rows, CONTAINERS of them with running boxes.
        users = [User(username=f"r{i:04d}") for i in range(args.rows)]
        User.objects.bulk_create(users)
        users = list(User.objects.filter(username__startswith="r").order_by("username"))
        Box.objects.bulk_create(Box(user=u, username=u.username) for u in users)

        def bring_up(user):
            try:
                lifecycle.ensure_box(user)
            finally:
                connections.close_all()

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(bring_up, users[: args.containers]))

        busy = reaper.reap()
        rows.append(
            (
                f"reapboxes, {args.rows} rows, {args.containers} containers in use",
                busy.seconds,
                None,
                f"{busy.list_calls} list call, {busy.api_calls} API calls",
                "< 2 s, 1 list",
            )
        )
        # Baseline for the idle pass: the engine alone stopping and removing
        # as many containers, as many at a time as the reaper does.
        names = [f"spoon-bench-stop-{instance}-{i}" for i in range(args.containers + 1)]

        def start_raw(name):
            docker_engine.run_container(
                image,
                name=name,
                labels={"spoon.instance": instance},
                environment={"SPOON_USER": "bench"},
                tmpfs={"/run": ""},
            )

        def stop_raw(name):
            docker_engine.stop_container(name, timeout=10)
            docker_engine.remove_container(name)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(start_raw, names))
        time.sleep(1)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=reaper.PARALLEL_STOPS) as pool:
            list(pool.map(stop_raw, names))
        raw_stops = time.perf_counter() - started
        rows.append(
            (
                f"docker stop + rm of {len(names)} containers (no Spoon)",
                raw_stops,
                None,
                "baseline for the idle pass",
                "",
            )
        )

        old = timezone.now() - timedelta(hours=2)
        Box.objects.update(last_activity_at=old)
        idle = reaper.reap()
        assert idle.stopped == args.containers + 1, idle.summary()
        rows.append(
            (
                f"reapboxes, {args.rows} rows, {args.containers + 1} containers idle",
                idle.seconds,
                None,
                f"{idle.seconds / raw_stops:.2f}x baseline, {idle.list_calls} list call, "
                f"{idle.api_calls} API calls",
                "1 list",
            )
        )
    finally:
        sandbox.finish(data_dir, instance)

    print(
        f"\nbench/boxes  (engine {docker_engine.version()}, image {image}, "
        f"{args.rounds} cold rounds, {args.warm} warm calls)\n"
    )
    header = ("measure", "median s", "p95 s", "vs baseline / calls", "target")
    print("| {:<50} | {:>9} | {:>7} | {:<48} | {:<13} |".format(*header))
    print(f"|{'-' * 52}|{'-' * 11}|{'-' * 9}|{'-' * 50}|{'-' * 15}|")
    for name, median, high, note, target in rows:
        high_text = f"{high:.4f}" if high is not None else "-"
        print(f"| {name:<50} | {median:>9.4f} | {high_text:>7} | {note:<48} | {target:<13} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
