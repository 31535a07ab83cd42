#!/usr/bin/env python3
"""bench/terminal: the browser terminal's data path against the raw exec socket.

    .venv/bin/python bench/terminal.py [--megabytes 50] [--keys 200] [--idle 200]

Runs daphne on loopback with a throwaway data directory and one real box,
and measures each figure twice in the same run: through Spoon (WebSocket ->
daphne -> consumer -> exec socket) and straight on a Docker exec socket
running the same tmux attach. Figures: throughput of `cat` of a large file,
keystroke echo latency, warm open (ticket to first prompt byte), Ctrl-C
under `yes`, and daphne's RSS per idle terminal.
"""

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sandbox  # noqa: E402  (bench/ is not a package)

REPO = sandbox.REPO
PROMPT = b"$ "


class Session:
    """One terminal, either through Spoon's WebSocket or straight on an exec socket."""

    def __init__(self, name):
        self.name = name
        self.buffer = bytearray()
        self.arrived = asyncio.Event()

    async def wait_for(self, needle: bytes, timeout=120.0, start=0) -> float:
        deadline = time.perf_counter() + timeout
        while needle not in self.buffer[start:]:
            self.arrived.clear()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(
                    f"{self.name}: no {needle!r}; tail {bytes(self.buffer[-200:])!r}"
                )
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                pass
        return time.perf_counter()

    def take(self, data: bytes):
        self.buffer += data
        if len(self.buffer) > 4_000_000:  # keep the tail only; counting is done elsewhere
            del self.buffer[:-1_000_000]
        self.arrived.set()


class SpoonTerminal(Session):
    def __init__(self, url, cookie, origin):
        super().__init__("spoon")
        self.url, self.cookie, self.origin = url, cookie, origin
        self.received = 0

    async def open(self, ticket: str):
        import websockets

        self.ws = await websockets.connect(
            f"{self.url}?ticket={ticket}",
            additional_headers={"Cookie": self.cookie, "Origin": self.origin},
            max_size=None,
            compression=None,
        )
        await self.ws.send(json.dumps({"type": "resize", "cols": 200, "rows": 50}))
        self.reader = asyncio.create_task(self.read())

    async def read(self):
        """Acks as the page does: every 8 KB, or 20 ms after the last output."""
        import websockets

        unacked, flush = 0, None

        async def ack_later():
            nonlocal unacked
            await asyncio.sleep(0.02)
            if unacked:
                count, unacked = unacked, 0
                with contextlib.suppress(websockets.ConnectionClosed):
                    await self.ws.send(json.dumps({"type": "ack", "bytes": count}))

        async for message in self.ws:
            if isinstance(message, bytes):
                self.received += len(message)
                self.take(message)
                unacked += len(message)
                if unacked >= 8192:
                    count, unacked = unacked, 0
                    await self.ws.send(json.dumps({"type": "ack", "bytes": count}))
                elif flush is None or flush.done():
                    flush = asyncio.create_task(ack_later())

    async def type(self, data: bytes):
        await self.ws.send(data)

    async def close(self):
        await self.ws.close()
        self.reader.cancel()


class DirectTerminal(Session):
    def __init__(self, box):
        super().__init__("direct")
        self.box = box
        self.received = 0

    async def open(self, session="direct"):
        from terminal.pty import attach

        self.pty = await attach(self.box, session, self.box.home, 200, 50)
        self.reader = asyncio.create_task(self.read())

    async def read(self):
        while data := await self.pty.read():
            self.received += len(data)
            self.take(data)

    async def type(self, data: bytes):
        self.pty.write(data)
        await self.pty.drain()

    async def close(self):
        self.reader.cancel()
        await self.pty.end()


async def throughput(term, megabytes) -> float:
    await term.type(b"clear\r")
    await asyncio.sleep(0.5)
    mark = uuid.uuid4().hex[:8].encode()
    started = time.perf_counter()
    start = len(term.buffer)
    await term.type(b"cat ~/big.txt; printf 'END%s\\n' " + mark + b"\r")
    done = await term.wait_for(b"END" + mark, timeout=300, start=start)
    return megabytes / (done - started)


async def echo_latencies(terms, keys) -> list[list[float]]:
    """Each terminal's keystroke round trips, taken in turn, so that both
    meet the machine in the same moods."""
    samples = [[] for _ in terms]
    for i in range(keys):
        key = b"x" if i % 2 == 0 else b"\x7f"
        for term, taken in zip(terms, samples, strict=True):
            start = len(term.buffer)
            began = time.perf_counter()
            await term.type(key)
            while len(term.buffer) == start:
                term.arrived.clear()
                await term.arrived.wait()
            taken.append(time.perf_counter() - began)
            await asyncio.sleep(0.005)
    return samples


async def ctrl_c(term) -> float:
    await term.type(b"yes spoon-flood\r")
    await asyncio.sleep(1.0)
    mark = uuid.uuid4().hex[:8].encode()
    start = len(term.buffer)
    began = time.perf_counter()
    await term.type(b"\x03")
    await term.type(b"printf 'CC%s\\n' " + mark + b"\r")
    done = await term.wait_for(b"CC" + mark, timeout=60, start=start)
    return done - began


async def daphne_floor(keys: int) -> list[float]:
    """The same keystroke round trip through daphne with an app that only
    echoes: what daphne and the WebSocket client cost before Spoon does anything."""
    import websockets

    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
         "echo_asgi:application"],
        cwd=Path(__file__).parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        samples = []
        async with websockets.connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
            for _ in range(keys):
                began = time.perf_counter()
                await ws.send(b"x")
                await ws.recv()
                samples.append(time.perf_counter() - began)
                await asyncio.sleep(0.005)
        return samples
    finally:
        server.terminate()
        server.wait(timeout=10)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def bench(args, user, cookie, box, url, origin, daphne_pid):
    from asgiref.sync import sync_to_async

    from workspaces import access

    issue = sync_to_async(access.issue, thread_sensitive=False)
    rows = []

    async def spoon_terminal():
        term = SpoonTerminal(url, cookie, origin)
        await term.open(await issue(user))
        await term.wait_for(PROMPT)
        return term

    async def direct_terminal(session="direct"):
        term = DirectTerminal(box)
        await term.open(session)
        await term.wait_for(PROMPT)
        return term

    spoon, direct = await spoon_terminal(), await direct_terminal()

    spoon_mbs = await throughput(spoon, args.megabytes)
    direct_mbs = await throughput(direct, args.megabytes)
    rows.append(
        (
            "throughput, cat of the file (MB/s)",
            spoon_mbs,
            direct_mbs,
            f"{spoon_mbs / direct_mbs:.2f}x",
            ">= 0.8x",
        )
    )

    await spoon.type(b"clear\r")
    await direct.type(b"clear\r")
    await asyncio.sleep(0.5)
    spoon_echo, direct_echo = await echo_latencies([spoon, direct], args.keys)
    for label, fn in (
        ("p50", statistics.median),
        ("p99", lambda v: sorted(v)[int(len(v) * 0.99) - 1]),
    ):
        s_ms, d_ms = fn(spoon_echo) * 1000, fn(direct_echo) * 1000
        rows.append(
            (
                f"keystroke echo {label} (ms)",
                s_ms,
                d_ms,
                f"+{s_ms - d_ms:.2f} ms",
                "<= +1 ms" if label == "p50" else "",
            )
        )

    floor = await daphne_floor(args.keys)
    floor_ms = statistics.median(floor) * 1000
    rows.append(("echo via daphne, bare ASGI echo app (ms)", floor_ms, 0.0,
                 "daphne + client, no box", ""))  # fmt: skip

    spoon_cc, direct_cc = await ctrl_c(spoon), await ctrl_c(direct)
    rows.append(("Ctrl-C under yes (ms)", spoon_cc * 1000, direct_cc * 1000, "", "<= 200 ms"))
    await spoon.close()
    await direct.close()

    spoon_open, direct_open = [], []
    for _ in range(args.opens):
        ticket = await issue(user)
        term = SpoonTerminal(url, cookie, origin)
        began = time.perf_counter()
        await term.open(ticket)
        spoon_open.append(await term.wait_for(PROMPT) - began)
        await term.close()
        term = DirectTerminal(box)
        began = time.perf_counter()
        await term.open()
        direct_open.append(await term.wait_for(PROMPT) - began)
        await term.close()
    rows.append(
        (
            "warm open, ticket to first prompt (ms)",
            statistics.median(spoon_open) * 1000,
            statistics.median(direct_open) * 1000,
            "",
            "<= 200 ms",
        )
    )

    await asyncio.sleep(1)
    before = rss_kb(daphne_pid)
    idle = []
    for _ in range(args.idle):
        idle.append(await spoon_terminal())
    await asyncio.sleep(2)
    per_terminal = (rss_kb(daphne_pid) - before) / args.idle
    own_before = rss_kb(os.getpid())
    directs = [await direct_terminal() for _ in range(args.idle)]
    await asyncio.sleep(1)
    direct_per = (rss_kb(os.getpid()) - own_before) / args.idle
    rows.append(
        (
            f"RSS per idle terminal, {args.idle} open (KB)",
            per_terminal,
            direct_per,
            "daphne vs. this client",
            "<= 200 KB",
        )
    )
    for term in idle + directs:
        await term.close()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--opens", type=int, default=10)
    parser.add_argument("--idle", type=int, default=200)
    args = parser.parse_args(argv)

    data_dir, instance = sandbox.start(SPOON_BOX_PIDS="4096")

    from django.contrib.auth import get_user_model
    from django.test import Client

    from boxes import commands, docker_engine, lifecycle

    user = get_user_model().objects.create_user(f"bench{uuid.uuid4().hex[:6]}")
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    port = free_port()
    daphne = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "spoon.asgi:application",
        ],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        box = lifecycle.ensure_box(user)
        size = args.megabytes * 1024 * 1024
        made = commands.run(
            box, ["sh", "-c", f"head -c {size * 3 // 4} /dev/urandom | base64 -w 199 > ~/big.txt"]
        )
        assert made.ok, made.output
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        rows = asyncio.run(
            bench(
                args,
                user,
                cookie,
                box,
                f"ws://127.0.0.1:{port}/ws/terminal/",
                f"http://127.0.0.1:{port}",
                daphne.pid,
            )
        )
    finally:
        daphne.terminate()
        daphne.wait(timeout=10)
        sandbox.finish(data_dir, instance)

    print(
        f"\nbench/terminal  (engine {docker_engine.version()}, {args.megabytes} MB file, "
        f"{args.keys} keys, {args.opens} opens, {args.idle} idle terminals)\n"
    )
    print(
        "| {:<44} | {:>10} | {:>12} | {:<22} | {:<9} |".format(
            "measure", "via Spoon", "exec socket", "compared", "target"
        )
    )
    print(f"|{'-' * 46}|{'-' * 12}|{'-' * 14}|{'-' * 24}|{'-' * 11}|")
    for name, spoon, direct, note, target in rows:
        print(f"| {name:<44} | {spoon:>10.2f} | {direct:>12.2f} | {note:<22} | {target:<9} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
