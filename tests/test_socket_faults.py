"""Every WebSocket connection survives any input, and an error inside one ends
that connection alone and lets go of all it held: leases, the exec in the
box, daphne's file descriptors."""

import asyncio
import contextlib
import json
import os
import uuid
from unittest import mock

import pytest
import websockets
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from boxes import docker_engine
from boxes.models import Box, Lease
from spoon.routing import application
from spoon.websockets import same_origin
from terminal.consumer import TerminalConsumer
from tests.previews_support import PreviewClient
from tests.terminal_client import TerminalClient
from tests.waits import until, until_async
from workspaces import access

pytestmark = pytest.mark.django_db(transaction=True)

DEEP = "[" * 100_000  # json.loads raises RecursionError, not a ValueError


@pytest.fixture
def alice(engine, make_user, session_cookie):
    user = make_user()
    user.cookie = session_cookie(user)
    return user


def tmux_clients(box_name: str) -> list[str] | None:
    """The tmux clients in the box: one per open terminal (the server is not
    one). None while the box is not there yet (terminals that closed at once
    leave its start going on)."""
    try:
        _, output = docker_engine.exec_run(box_name, ["ps", "-eo", "args", "--no-headers"])
    except docker_engine.NotFound:
        return None
    return [line for line in output.decode().splitlines() if line.startswith("tmux attach")]


async def opened(user) -> TerminalClient:
    client = TerminalClient(user.cookie, await sync_to_async(access.issue)(user))
    assert await client.open()
    await client.read_until(b"$ ")
    return client


async def test_a_deeply_nested_control_frame_is_ignored(alice):
    client = await opened(alice)
    await client.ws.send_to(text_data=DEEP)
    await client.type("echo still-$((2+2))\r")
    await client.read_until(b"still-4")
    await client.close()


@pytest.mark.both_databases
async def test_an_error_inside_the_consumer_ends_that_connection_and_lets_go(alice, caplog):
    other = await opened(alice)
    client = await opened(alice)

    async def broken(self, message):
        raise RuntimeError("a bug in a handler")

    with mock.patch.object(TerminalConsumer, "resize", broken):
        await client.send_json({"type": "resize", "cols": 90, "rows": 30})
        assert await client.wait_closed() == 1011
    box = await Box.objects.aget(user=alice)

    async def only_the_other_holds_it() -> bool:
        leases = await Lease.objects.live().filter(box=box).acount()
        return (leases, len(await sync_to_async(tmux_clients)(box.container_name))) == (1, 1)

    # The broken one lets go as it ends, in threads of its own.
    await until_async(
        only_the_other_holds_it, "more than the other terminal holds the box", timeout=30
    )
    assert "a bug in a handler" in caplog.text and "Traceback" not in caplog.text
    await other.type("echo other-$((3+3))\r")
    await other.read_until(b"other-6")
    await other.close()


async def test_an_unknown_websocket_address_is_refused_quietly(alice, caplog):
    for path in ("/ws/nothing/", "/ws/runs/abc/", "/ws/runs/\u00b2/", "/"):
        socket = WebsocketCommunicator(
            application, path,
            headers=[(b"host", b"localhost"), (b"cookie", alice.cookie.encode()),
                     (b"origin", b"http://localhost")],
        )  # fmt: skip
        connected, _ = await socket.connect(timeout=10)
        assert not connected, path
    assert "Traceback" not in caplog.text and "No route" not in caplog.text


@pytest.mark.parametrize(
    "origin, host, allowed",
    [
        ("http://localhost", "localhost", True),
        ("http://localhost:8000", "localhost:8000", True),
        ("https://localhost", "localhost:443", True),
        ("http://localhost:8001", "localhost:8000", False),
        ("http://localhost", "localhost:8000", False),
        ("https://localhost:8000", "localhost:8000", True),
        ("http://evil.example", "evil.example", False),  # not an allowed host
        ("http://127.0.0.1:9", "localhost:9", False),
        ("null", "localhost", False),
        ("", "localhost", False),
        ("ftp://localhost", "localhost", False),
        ("http://[::1]:8000", "[::1]:8000", True),
    ],
)
def test_the_origin_check_compares_host_and_port(origin, host, allowed):
    assert same_origin(origin, host) is allowed


def server_fds(server) -> int:
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


POOLS_MAY_GROW = 16


def in_server(server, code: str) -> str:
    return server.python(code).split()[-1]


@pytest.mark.slow
@pytest.mark.both_databases
def test_fifty_connections_ending_badly_leave_nothing_behind(spoon_server):
    """Fifty after a first round of 25: each opens a terminal, sends frames
    no page would, and drops without a close handshake; afterwards daphne
    holds what it held before, no lease lives on and no tmux client is left
    in the box."""
    username = f"f{uuid.uuid4().hex[:8]}"
    spoon_server.create_user(username, "a-long-test-password")
    log_before = len(spoon_server.output())
    client = PreviewClient(spoon_server)
    client.log_in(username, "a-long-test-password")
    models = "from boxes.models import Box, Lease; "
    leases = (
        f"{models} print(Lease.objects.live().filter(box__user__username={username!r}).count())"
    )

    def ticket() -> str:
        status, answer = client.spoon_api("POST", "/terminal/tickets/")
        assert status == 200, answer
        return answer["ws_url"]

    async def one(ws_url: str, fault: str):
        socket = await websockets.connect(
            f"ws://localhost:{spoon_server.port}{ws_url}", host="127.0.0.1",
            port=spoon_server.port, origin=f"http://localhost:{spoon_server.port}",
            additional_headers={"Cookie": f"sessionid={client.session}"}, max_size=None,
        )  # fmt: skip
        await socket.send(json.dumps({"type": "resize", "cols": 80, "rows": 24}))
        await asyncio.wait_for(socket.recv(), 60)
        bad = {"deep": DEEP, "binary": b"\xff\xfe" * 10, "ack": '{"type":"ack","bytes":1e999}'}
        await socket.send(bad[fault] if fault in bad else '{"type": "resize", "cols": []}')
        socket.transport.abort()  # no close frame, no FIN handshake

    async def round_of(faults: list[str]):
        urls = [ticket() for _ in faults]
        await asyncio.gather(*(one(url, fault) for url, fault in zip(urls, faults, strict=True)))

    faults = ["deep", "binary", "ack", "resize", "deep"] * 5
    # The first round starts the box and fills daphne's pools (threads with
    # their database connections, the engine's connections): what is open
    # after it is what stays open.
    asyncio.run(round_of(faults))
    box = in_server(
        spoon_server,
        f"{models} print(Box.objects.get(user__username={username!r}).container_name)",
    )

    def settled(fds_at_most=None) -> bool:
        left = (server_fds(spoon_server), in_server(spoon_server, leases), tmux_clients(box))
        return (fds_at_most is None or left[0] <= fds_at_most) and left[1:] == ("0", [])

    until(settled, "the first round's terminals never let go", every=0.5)
    # daphne's two thread pools (six threads each, a database connection
    # each) may still grow on a busy machine; what leaks grows with every
    # connection, fifty more here.
    before = server_fds(spoon_server) + POOLS_MAY_GROW
    asyncio.run(round_of(faults))
    asyncio.run(round_of(faults))
    with contextlib.suppress(AssertionError):  # what is left is said below
        until(lambda: settled(fds_at_most=before), every=0.5)
    assert server_fds(spoon_server) <= before, "daphne keeps descriptors"
    assert in_server(spoon_server, leases) == "0"
    assert tmux_clients(box) == []
    assert "Traceback" not in spoon_server.output()[log_before:]
