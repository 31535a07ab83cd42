#!/usr/bin/env python3
"""bench/preview: a port of a box through its preview, against the same
bytes inside the box and on one raw Docker exec stream.

    .venv/bin/python bench/preview.py [--requests 300] [--megabytes 100] [--connections 20]

Runs daphne on loopback with a throwaway data directory and one real box
running tests/previewapp.py on 8080, and measures each figure beside its
baseline in the same run:
  - a keep-alive GET of a small page (p50, p99): through the preview, and
    made inside the box with curl to 127.0.0.1 on one kept connection;
  - a download: through the preview, and the same bytes moved out of the box
    on one raw Docker exec stream (curl in the box writing to it);
  - a new connection's time to first byte: through the preview (a new relay
    into the box each time), and curl in the box (a new TCP connection).
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sandbox  # noqa: E402  (bench/ is not a package)

REPO = sandbox.REPO


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--connections", type=int, default=20)
    args = parser.parse_args(argv)

    data_dir, instance = sandbox.start()
    from django.contrib.auth import get_user_model

    from boxes import lifecycle
    from previews import access, hosts
    from tests.previews_support import run_app
    from tests.support import free_port, wait_for_port

    port = free_port()
    daphne = None
    try:
        user = get_user_model().objects.create_user(f"bench{uuid.uuid4().hex[:6]}")
        box = lifecycle.ensure_box(user)
        run_app(box.username, 8080)
        log = open(Path(data_dir) / "daphne.log", "wb")
        daphne = subprocess.Popen(
            [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
             "spoon.asgi:application"],
            cwd=REPO, env=os.environ, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_port(port)
        host = f"8080--{box.username}.localhost:{port}"
        target = hosts.parse(host)
        cookie = access.set_cookie(target, access.Visitor(user_id=user.pk), "http")
        headers = {"Host": host, "Cookie": cookie.decode().split(";")[0]}

        def get(connection, path):
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response, response.read()

        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for _ in range(20):  # the box held, the relay open, daphne warm
            response, _ = get(kept, "/headers")
            assert response.status == 200, response.status
        through = []
        for _ in range(args.requests):
            started = time.perf_counter()
            get(kept, "/headers")
            through.append(time.perf_counter() - started)
        urls = ["http://127.0.0.1:8080/headers"] * args.requests
        inside = curl_times(box.container_name, urls, "time_total")[1:]

        started = time.perf_counter()
        response, body = get(kept, f"/big?mb={args.megabytes}")
        preview_rate = args.megabytes / (time.perf_counter() - started)
        assert len(body) == args.megabytes << 20
        raw_rate = asyncio.run(exec_stream_rate(box.container_name, args.megabytes))

        first_byte = []
        for _ in range(args.connections):
            fresh = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            started = time.perf_counter()
            fresh.request("GET", "/close", headers=headers)
            response = fresh.getresponse()
            response.read(1)
            first_byte.append(time.perf_counter() - started)
            response.read()
            fresh.close()
        inside_first = curl_times(
            box.container_name, ["http://127.0.0.1:8080/close"] * args.connections,
            "time_starttransfer",
        )  # fmt: skip
    finally:
        if daphne:
            daphne.terminate()
            daphne.wait()
        sandbox.finish(data_dir, instance)

    ms = 1000
    overhead = statistics.median(through) - statistics.median(inside)
    rows = [
        ("keep-alive GET p50", f"{statistics.median(through) * ms:.2f} ms",
         f"{statistics.median(inside) * ms:.2f} ms (curl in the box)",
         f"overhead {overhead * ms:.2f} ms (target <= 2)"),
        ("keep-alive GET p99", f"{percentile(through, 0.99) * ms:.2f} ms",
         f"{percentile(inside, 0.99) * ms:.2f} ms", ""),
        (f"download {args.megabytes} MB", f"{preview_rate:.0f} MB/s",
         f"{raw_rate:.0f} MB/s (raw exec stream)",
         f"{preview_rate / raw_rate:.2f}x (target >= 0.7)"),
        ("new connection, first byte p50", f"{statistics.median(first_byte) * ms:.1f} ms",
         f"{statistics.median(inside_first) * ms:.1f} ms (curl in the box)", "(target <= 150)"),
        ("new connection, first byte max", f"{max(first_byte) * ms:.1f} ms",
         f"{max(inside_first) * ms:.1f} ms", ""),
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    heads = ("figure", "preview", "baseline", "")
    print(" | ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
