#!/usr/bin/env python3
"""bench/preview: a port of a box through its preview, against the same
bytes inside the box and on one raw Docker exec stream.

    .venv/bin/python bench/preview.py [--requests 300] [--megabytes 100] [--connections 20]

Runs daphne on loopback with a throwaway data directory and one real box
running tests/previewapp.py on 8080, and measures each figure beside its
baseline in the same run:
  - a keep-alive GET of a small page (p50, p99): through the preview, and
    made inside the box with curl to 127.0.0.1 on one kept connection;
  - a download (the median of three, taken in turns): through the preview,
    and the same bytes moved out of the box on one raw Docker exec stream
    (curl in the box writing to it);
  - a new connection's time to first byte, one at a time and six at once (a
    page's first load): through the preview (a new connection in the box's
    tunnel, boxes.tunnels), against the two ways a connection can reach the
    box, measured on their own in this process: a message on the tunnel
    already open, and an exec started for the connection (spoon-relay, what
    previews did before the tunnel and still do in boxes without it); and
    curl's own first byte in the box.
Targets: keep-alive p50 overhead <= 2 ms, download >= 0.7x the exec
stream, first byte of a new connection <= 150 ms.
"""

import argparse
import asyncio
import http.client
import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sandbox  # noqa: E402  (bench/ is not a package)

REPO = sandbox.REPO
percentile = sandbox.percentile


def curl_times(box: str, urls: list[str], what: str) -> list[float]:
    """Seconds per transfer, as curl measures them, in the box."""
    from boxes import docker_engine

    code, out = docker_engine.exec_run(
        box, ["curl", "-s", "-o", "/dev/null", "-w", f"%{{{what}}}\\n", *urls], user="1000"
    )
    if what == "time_total" and len(urls) > 1:  # curl -o applies to the first URL only
        code, out = docker_engine.exec_run(
            box, ["sh", "-c", "curl -s -w '\\n%{time_total}\\n' \"$@\" >/tmp/t; cat /tmp/t",
                  "curl", *urls], user="1000",
        )  # fmt: skip
    return [float(line) for line in out.decode().split() if line.replace(".", "").isdigit()]


async def exec_stream_rate(box_name: str, megabytes: int) -> float:
    """MB/s of the app's download read straight off one raw exec stream."""
    from boxes import processes
    from boxes.models import Box

    box = await asyncio.to_thread(Box.objects.get, username=box_name.removeprefix("spoon-box-"))
    url = f"http://127.0.0.1:8080/big?mb={megabytes}"
    process = await processes.open_process(box, ["curl", "-s", url])
    started, moved = time.perf_counter(), 0
    while data := await process.read():
        moved += len(data)
    assert moved == megabytes << 20, moved
    return megabytes / (time.perf_counter() - started)


DOWNLOADS = 3
REQUEST = b"GET /close HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


async def first_bytes(box_name: str, count: int, by_exec: bool) -> tuple[list, list]:
    """First bytes of new connections to 8080, one at a time and six at once,
    made here on a tunnel already open or on an exec started for each."""
    from boxes import tunnels
    from boxes.models import Box
    from previews import upstream

    box = await asyncio.to_thread(Box.objects.get, username=box_name.removeprefix("spoon-box-"))
    tunnel = await tunnels.Tunnel.open(box)

    async def one() -> float:
        started = time.perf_counter()
        connection = await upstream.Relay.open(box, 8080) if by_exec else tunnel.connect(8080)
        connection.write(REQUEST)
        await connection.drain()
        assert await connection.read()
        seconds = time.perf_counter() - started
        connection.close()
        return seconds

    single = [await one() for _ in range(count)]
    burst = []
    for _ in range(max(1, count // 6)):
        burst += await asyncio.gather(*(one() for _ in range(6)))
    tunnel.close()
    return single, burst


class Preview:
    """daphne serving one box's port 8080, as a signed-in owner sees it."""

    def __init__(self, data_dir: str, user, box):
        from previews import access, hosts
        from tests.support import free_port, wait_for_port

        self.port = free_port()
        log = open(Path(data_dir) / "daphne.log", "wb")
        self.daphne = subprocess.Popen(
            [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p",
             str(self.port), "spoon.asgi:application"],
            cwd=REPO, env=os.environ, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_port(self.port)
        host = f"8080--{box.username}.localhost:{self.port}"
        cookie = access.set_cookie(hosts.parse(host), access.Visitor(user_id=user.pk), "http")
        self.headers = {"Host": host, "Cookie": cookie.decode().split(";")[0]}

    def connection(self, timeout=120) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, connection, path):
        connection.request("GET", path, headers=self.headers)
        response = connection.getresponse()
        return response, response.read()

    def first_byte(self) -> float:
        """Seconds to the first byte of a response on a new connection."""
        fresh = self.connection(timeout=60)
        started = time.perf_counter()
        fresh.request("GET", "/close", headers=self.headers)
        response = fresh.getresponse()
        response.read(1)
        seconds = time.perf_counter() - started
        response.read()
        fresh.close()
        return seconds

    def new_connections(self, count: int) -> tuple[list[float], list[float]]:
        """First bytes of count new connections one at a time, and of rounds of six at once."""
        single = [self.first_byte() for _ in range(count)]
        burst = []
        for _ in range(max(1, count // 6)):
            with ThreadPoolExecutor(6) as pool:
                burst += pool.map(lambda _: self.first_byte(), range(6))
        return single, burst

    def stop(self) -> None:
        self.daphne.terminate()
        self.daphne.wait()


def keep_alive_gets(connection: http.client.HTTPConnection, headers: dict, count: int) -> list:
    """Seconds per GET of a small page on one kept connection, once warm
    (the box held, the tunnel open, the server ready)."""
    for _ in range(20):
        connection.request("GET", "/headers", headers=headers)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("GET", "/headers", headers=headers)
        connection.getresponse().read()
        seconds.append(time.perf_counter() - started)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--connections", type=int, default=20)
    args = parser.parse_args(argv)

    data_dir, instance = sandbox.start()
    from django.contrib.auth import get_user_model

    from boxes import lifecycle
    from tests.previews_support import run_app

    preview = None
    try:
        user = get_user_model().objects.create_user(f"bench{uuid.uuid4().hex[:6]}")
        box = lifecycle.ensure_box(user)
        run_app(box.username, 8080)
        preview = Preview(data_dir, user, box)

        kept = preview.connection()
        through = keep_alive_gets(kept, preview.headers, args.requests)
        urls = ["http://127.0.0.1:8080/headers"] * args.requests
        inside = curl_times(box.container_name, urls, "time_total")[1:]

        preview_rates, raw_rates = [], []
        for _ in range(DOWNLOADS):  # taken in turns, the median of each: the machine is noisy
            started = time.perf_counter()
            response, body = preview.get(kept, f"/big?mb={args.megabytes}")
            preview_rates.append(args.megabytes / (time.perf_counter() - started))
            assert len(body) == args.megabytes << 20
            raw_rates.append(asyncio.run(exec_stream_rate(box.container_name, args.megabytes)))
        preview_rate, raw_rate = statistics.median(preview_rates), statistics.median(raw_rates)

        single, burst = preview.new_connections(args.connections)
        tunnel_single, tunnel_burst = asyncio.run(
            first_bytes(box.container_name, args.connections, by_exec=False)
        )
        exec_single, exec_burst = asyncio.run(
            first_bytes(box.container_name, args.connections, by_exec=True)
        )
        inside_first = curl_times(
            box.container_name, ["http://127.0.0.1:8080/close"] * args.connections,
            "time_starttransfer",
        )  # fmt: skip
    finally:
        if preview:
            preview.stop()
        sandbox.finish(data_dir, instance)

    ms = 1000
    p50 = statistics.median
    overhead = p50(through) - p50(inside)
    rows = [
        ("keep-alive GET p50", f"{p50(through) * ms:.2f} ms",
         f"{p50(inside) * ms:.2f} ms (curl in the box)",
         f"overhead {overhead * ms:.2f} ms (target <= 2)"),
        ("keep-alive GET p99", f"{percentile(through, 0.99) * ms:.2f} ms",
         f"{percentile(inside, 0.99) * ms:.2f} ms", ""),
        (f"download {args.megabytes} MB, median of {DOWNLOADS}", f"{preview_rate:.0f} MB/s",
         f"{raw_rate:.0f} MB/s (raw exec stream)",
         f"{preview_rate / raw_rate:.2f}x (target >= 0.7)"),
        ("new connection, first byte p50", f"{p50(single) * ms:.1f} ms",
         f"tunnel {p50(tunnel_single) * ms:.1f} ms, exec {p50(exec_single) * ms:.1f} ms, "
         f"curl in the box {p50(inside_first) * ms:.1f} ms", "(target <= 150)"),
        ("new connection, first byte max", f"{max(single) * ms:.1f} ms",
         f"tunnel {max(tunnel_single) * ms:.1f} ms, exec {max(exec_single) * ms:.1f} ms", ""),
        ("6 new connections at once, p50", f"{p50(burst) * ms:.1f} ms",
         f"tunnel {p50(tunnel_burst) * ms:.1f} ms, exec {p50(exec_burst) * ms:.1f} ms", ""),
        ("6 new connections at once, max", f"{max(burst) * ms:.1f} ms",
         f"tunnel {max(tunnel_burst) * ms:.1f} ms, exec {max(exec_burst) * ms:.1f} ms", ""),
    ]  # fmt: skip
    sandbox.print_table(("figure", "preview", "baseline", ""), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
