#!/usr/bin/env python3
"""bench/run_output: what a run printing 4 MB, followed by 20 pages, costs
the database: bytes written and read per second on the wire, and bytes of
PostgreSQL's write-ahead log, before and after run output became pieces.

    scripts/with-postgres-redis .venv/bin/python bench/run_output.py [--megabytes 4]

One real box (network off) prints the output over about ten seconds, twice:
  - after (today's code): runs.carry_out appends pieces (RunChunk) and the 20
    followers are real RunStreamConsumers on the Redis layer, getting the
    pieces through it (workspaces.fanout);
  - before (the baseline, in the same run): what Spoon did until this change,
    re-enacted here since its code is gone: the whole output so far written
    into the run's row every quarter second, and each follower reading the
    whole row five times a second.
Every byte between Spoon and PostgreSQL passes a counting proxy on loopback.
"""

import argparse
import asyncio
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sandbox  # noqa: E402  (bench/ is not a package)


class CountingProxy:
    """A TCP proxy on 127.0.0.1 to PostgreSQL that counts bytes each way."""

    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.to_db = self.from_db = 0
        listener = socket.create_server(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self._serve, args=(listener,), daemon=True).start()

    def _serve(self, listener):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(asyncio.start_server(self._connection, sock=listener))
        self.loop.run_forever()

    async def _connection(self, client_reader, client_writer):
        db_reader, db_writer = await asyncio.open_connection(*self.upstream)

        async def pipe(reader, writer, toward_db):
            while data := await reader.read(65536):
                if toward_db:
                    self.to_db += len(data)
                else:
                    self.from_db += len(data)
                writer.write(data)
                await writer.drain()
            writer.close()

        await asyncio.gather(
            pipe(client_reader, db_writer, True),
            pipe(db_reader, client_writer, False),
            return_exceptions=True,
        )

    def counts(self) -> tuple[int, int]:
        return self.to_db, self.from_db


def wal_position() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")
        return int(cursor.fetchone()[0])


def printing(megabytes: int) -> list[str]:
    """A command printing `megabytes` MB of text (random, so that nothing
    compresses it away) over about ten seconds."""
    pieces = 100
    raw = megabytes * 1024 * 1024 // pieces * 3 // 4
    line = f"head -c {raw} /dev/urandom | base64 -w 0; echo"
    return ["sh", "-c", f"for i in $(seq {pieces}); do {line}; sleep 0.1; done"]


def measured(proxy: CountingProxy, work) -> dict:
    from django.db import connections

    connections.close_all()
    wal, (written, read), started = wal_position(), proxy.counts(), time.monotonic()
    work()
    seconds = time.monotonic() - started
    wal_after = wal_position()
    written_after, read_after = proxy.counts()
    return {
        "seconds": seconds,
        "written": (written_after - written) / seconds,
        "read": (read_after - read) / seconds,
        "wal": (wal_after - wal) / seconds,
    }


def after(workspace, argv, followers: int) -> int:
    """Today's code: runs.carry_out and real consumers. Bytes every follower got."""
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    from spoon.routing import application
    from workspaces import access, runs
    from workspaces.models import Run

    run = Run.objects.create(workspace=workspace, argv=argv, token=os.urandom(8).hex())
    client = Client()
    client.force_login(workspace.user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    async def follow(ticket) -> int:
        headers = [(b"host", b"localhost"), (b"cookie", cookie), (b"origin", b"http://localhost")]
        socket = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/?ticket={ticket}", headers)
        connected, _ = await socket.connect(timeout=30)
        assert connected
        got = 0
        while True:
            message = await asyncio.wait_for(socket.output_queue.get(), 300)
            if message["type"] == "websocket.close":
                return got
            frame = json.loads(message["text"])
            got += len(frame.get("text", ""))

    async def everything():
        tickets = [
            await sync_to_async(access.issue)(
                workspace.user, workspace=workspace, opens=access.run_socket(run.pk)
            )
            for _ in range(followers)
        ]
        following = [asyncio.create_task(follow(t)) for t in tickets]
        await asyncio.sleep(0.5)  # all connected and reading before it starts
        await asyncio.to_thread(runs.carry_out, run)
        return await asyncio.gather(*following)

    return min(asyncio.run(everything()))


def before(workspace, argv, followers: int) -> int:
    """Spoon until this change, re-enacted: the whole output written into the
    row every quarter second, each follower reading the row five times a second."""
    from django.db import connections

    from boxes import commands, lifecycle
    from workspaces.models import Run

    run = Run.objects.create(
        workspace=workspace, argv=argv, token=os.urandom(8).hex(), status=Run.Status.RUNNING
    )
    box = lifecycle.box_for(workspace.user)
    output = commands.CappedOutput(8 * 1024 * 1024, empty="")
    got = [0] * followers
    done = threading.Event()

    def save():
        Run.objects.filter(pk=run.pk).update(recorded_output=output.value)

    def follower(n):
        while True:
            finished = done.is_set()
            row = Run.objects.filter(pk=run.pk).values_list("recorded_output", "status").get()
            got[n] = len(row[0])
            if finished:
                break
            time.sleep(0.2)
        connections.close_all()

    threads = [threading.Thread(target=follower, args=(n,)) for n in range(followers)]
    for thread in threads:
        thread.start()
    commands.run_following(box, argv, lambda text, final: output.add(text), save)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.SUCCEEDED)
    done.set()
    for thread in threads:
        thread.join()
    return min(got)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=4)
    parser.add_argument("--followers", type=int, default=20)
    args = parser.parse_args()
    url = urllib.parse.urlparse(os.environ.get("DATABASE_URL", ""))
    if url.scheme not in ("postgres", "postgresql") or not os.environ.get("REDIS_URL"):
        sys.exit(
            "bench/run_output needs PostgreSQL and Redis: run it under scripts/with-postgres-redis"
        )
    proxy = CountingProxy(url.hostname, url.port or 5432)
    through = url._replace(netloc=f"{url.username}:{url.password}@127.0.0.1:{proxy.port}")
    data_dir, instance = sandbox.start(DATABASE_URL=urllib.parse.urlunparse(through))
    try:
        from django.contrib.auth import get_user_model

        from workspaces import folders

        user = get_user_model().objects.create_user(f"bench{os.getpid()}", password="x")
        workspace = folders.create_workspace(user, "bench", "main")
        argv = printing(args.megabytes)
        total = args.megabytes * 1024 * 1024 * 99 // 100  # base64's rounding
        results = {}
        for name, work in (("before", before), ("after", after)):
            got = {}
            results[name] = measured(
                proxy, lambda w=work, g=got: g.update(n=w(workspace, argv, args.followers))
            )
            results[name]["complete"] = got["n"] >= total - 200
        before_, after_ = results["before"], results["after"]
        print(f"\nA run printing {args.megabytes} MB, {args.followers} followers, PostgreSQL:\n")
        print("| per second | before: rewritten, re-read | after: pieces, fan-out | after/before |")
        print("| --- | --- | --- | --- |")
        for key, label in (
            ("written", "bytes to the database"),
            ("read", "bytes from the database"),
            ("wal", "write-ahead log bytes"),
        ):
            b, a = before_[key], after_[key]
            print(f"| {label} | {b / 1e6:.2f} MB | {a / 1e6:.3f} MB | {a / b:.3f} |")
        print(f"| seconds | {before_['seconds']:.1f} | {after_['seconds']:.1f} | |")
        print(
            f"| all of it reached every follower | {before_['complete']} | {after_['complete']} | |"
        )
    finally:
        sandbox.finish(data_dir, instance)


if __name__ == "__main__":
    main()
