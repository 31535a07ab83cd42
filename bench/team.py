#!/usr/bin/env python3
"""bench/team: a team's terminals on the reference deployment.

    scripts/with-postgres-redis .venv/bin/python bench/team.py [--terminals 300] [--seconds 120]

Real boxes (network off), each with terminals/boxes tabs open; everyone types
at a person's pace (--keys-per-second per terminal, 2 by default: a key, then
its erase) for --seconds, and each key's echo is timed. Measured twice in the
same run:
  - the deployment: two daphne processes behind the reference nginx
    (deploy/nginx/spoon-proxy.conf), on PostgreSQL and the Redis layer;
  - the baseline: the same terminals on one daphne process, no nginx.
Figures: echo p50 and p99, disconnects, and daphne's RSS per terminal (all
daphne processes' RSS with the terminals open, less before they opened,
over the terminals). Targets: echo p99 <= 25 ms, no disconnects, RSS per
terminal <= 200 KB.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sandbox  # noqa: E402  (bench/ is not a package)

REPO = sandbox.REPO
PROMPT = b"$ "


class Terminal:
    """One browser tab's terminal socket, acknowledging output as the page does."""

    def __init__(self, port: int, cookie: str):
        self.port, self.cookie = port, cookie
        self.screen = bytearray()
        self.arrived = asyncio.Event()
        self.closed_early = False

    async def open(self, ticket: str, tab: str):
        import websockets

        self.ws = await websockets.connect(
            f"ws://localhost:{self.port}/ws/terminal/?ticket={ticket}&tab={tab}",
            host="127.0.0.1", port=self.port, origin=f"http://localhost:{self.port}",
            additional_headers={"Cookie": self.cookie}, max_size=None, compression=None,
            ping_interval=None, open_timeout=120,
        )  # fmt: skip
        await self.ws.send(json.dumps({"type": "resize", "cols": 120, "rows": 40}))
        self.reader = asyncio.create_task(self.read())
        await self.wait_for(PROMPT)

    async def read(self):
        import websockets

        try:
            async for frame in self.ws:
                if isinstance(frame, bytes):
                    self.screen += frame
                    if len(self.screen) > 100_000:
                        del self.screen[:-10_000]
                    self.arrived.set()
                    await self.ws.send(json.dumps({"type": "ack", "bytes": len(frame)}))
        except websockets.ConnectionClosed:
            pass
        self.closed_early = True
        self.arrived.set()

    async def wait_for(self, needle: bytes, timeout=120.0):
        async with asyncio.timeout(timeout):
            while needle not in self.screen:
                self.arrived.clear()
                await self.arrived.wait()

    async def key(self, data: bytes) -> float | None:
        """Seconds from a key to the first output after it; None if it closed."""
        self.arrived.clear()
        began = time.perf_counter()
        await self.ws.send(data)
        try:
            async with asyncio.timeout(30):
                await self.arrived.wait()
        except TimeoutError:
            return None
        return None if self.closed_early else time.perf_counter() - began

    async def close(self):
        with contextlib.suppress(Exception):
            await self.ws.close()
        self.reader.cancel()


def rss_kb(pids) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def daphne(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
         "spoon.asgi:application"],
        cwd=REPO, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    from tests.support import wait_for_port

    wait_for_port(port)
    return process


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, as systemd stops it; daphne ends each terminal's exec in its
    box first, which takes a while with hundreds open."""
    process.terminate()
    try:
        process.wait(120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


async def phase(port, people, per_box, seconds, rate, pids) -> dict:
    """Open every terminal through `port`, type for `seconds`, close them."""
    from asgiref.sync import sync_to_async

    from workspaces import access

    issue = sync_to_async(access.issue, thread_sensitive=False)
    before = rss_kb(pids)
    terminals = []
    opening = asyncio.Semaphore(20)  # people open tabs over a while, not in one instant

    async def open_one(user, cookie, n):
        async with opening:
            term = Terminal(port, cookie)
            await term.open(await issue(user), f"t{n}")
            terminals.append(term)

    await asyncio.gather(
        *(open_one(user, cookie, n) for user, cookie in people for n in range(per_box))
    )
    opened = rss_kb(pids)
    echoes, lost = [], 0

    async def type_along(term: Terminal):
        nonlocal lost
        await asyncio.sleep(random.uniform(0, 1 / rate))
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            took = await term.key(b"x" if n % 2 == 0 else b"\x7f")
            if took is None:
                lost += 1
                return
            echoes.append(took)
            n += 1
            await asyncio.sleep(max(0.0, 1 / rate - took))

    await asyncio.gather(*(type_along(t) for t in terminals))
    disconnects = sum(t.closed_early for t in terminals)
    for term in terminals:
        await term.close()
    echoes.sort()
    return {
        "terminals": len(terminals),
        "keys": len(echoes),
        "p50": statistics.median(echoes) * 1000,
        "p99": echoes[min(len(echoes) - 1, int(0.99 * len(echoes)))] * 1000,
        "disconnects": max(disconnects, lost),
        "rss_per_terminal": (opened - before) / max(1, len(terminals)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--terminals", type=int, default=300)
    parser.add_argument("--boxes", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--keys-per-second", type=float, default=2)
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get(
        "REDIS_URL"
    ):
        sys.exit("bench/team needs PostgreSQL and Redis: run it with scripts/with-postgres-redis")
    data_dir, instance = sandbox.start(
        SPOON_BOX_PIDS="4096", DATABASE_URL=os.environ["DATABASE_URL"]
    )

    from django.contrib.auth import get_user_model
    from django.test import Client

    from boxes import lifecycle
    from tests.support import free_port, reference_nginx

    people = []
    for _ in range(args.boxes):
        user = get_user_model().objects.create_user(f"team{uuid.uuid4().hex[:6]}")
        client = Client()
        client.force_login(user)
        people.append((user, f"sessionid={client.cookies['sessionid'].value}"))
        lifecycle.ensure_box(user)
    per_box = max(1, args.terminals // args.boxes)
    rate, seconds = args.keys_per_second, args.seconds
    results = {}
    try:
        first, second = daphne(free_port()), daphne(free_port())
        ports = [int(p.args[4]) for p in (first, second)]
        with tempfile.TemporaryDirectory() as folder, reference_nginx(Path(folder), ports) as nginx:
            results["two daphnes behind nginx"] = asyncio.run(
                phase(nginx, people, per_box, seconds, rate, [first.pid, second.pid])
            )
            print(results, file=sys.stderr)
        for process in (first, second):
            stop(process)
        alone = daphne(free_port())
        results["one daphne, no nginx (baseline)"] = asyncio.run(
            phase(int(alone.args[4]), people, per_box, seconds, rate, [alone.pid])
        )
        stop(alone)
    finally:
        sandbox.finish(data_dir, instance)

    print(
        f"\nbench/team: {per_box * args.boxes} terminals over {args.boxes} boxes, each typing "
        f"{rate:g} keys/s for {seconds:g} s\n"
    )
    print("| set-up | terminals | keys | echo p50 | echo p99 | disconnects | RSS/terminal |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(
            f"| {name} | {r['terminals']} | {r['keys']} | {r['p50']:.1f} ms | "
            f"{r['p99']:.1f} ms | {r['disconnects']} | {r['rss_per_terminal']:.0f} KB |"
        )
    print("\nTargets: echo p99 <= 25 ms, no disconnects, RSS per terminal <= 200 KB.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
