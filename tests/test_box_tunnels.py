"""A box's tunnel: many TCP connections to its loopback over one spoon-mux
process, each with its own bytes and its own window; and what happens when
nothing listens, a box stops, an image has no spoon-mux, or the box's side
breaks the frames."""

import asyncio
import contextlib
import hashlib
import json
import os
import struct
import time

import pytest

from boxes import docker_engine, lifecycle, processes, tunnels
from boxes.models import Box
from previews import upstream
from tests.previewapp import CHUNK as APP_CHUNK
from tests.previews_support import connections_to, run_app, wait_listening
from tests.waits import until, until_async

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def box(engine, make_user):
    made = lifecycle.ensure_box(make_user())
    run_app(made.username, 8080)
    return Box.objects.select_related("user").get(pk=made.pk)


def request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


async def answer(connection) -> tuple[bytes, bytes]:
    """(head, body) of the response, read to the end of the connection."""
    data = bytearray()
    while chunk := await connection.read():
        data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return head, body


def in_box(box: Box, *argv: str) -> str:
    return docker_engine.exec_run(box.container_name, list(argv))[1].decode()


def test_many_connections_share_one_tunnel_each_with_its_own_bytes(box):
    uploads = [os.urandom(3 << 20) for _ in range(4)]

    async def use():
        tunnel = await tunnels.Tunnel.open(box)

        async def download():
            connection = tunnel.connect(8080)
            connection.write(request("GET", "/big?mb=4"))
            head, body = await answer(connection)
            return head.split(b"\r\n")[0], body

        async def upload(data):
            connection = tunnel.connect(8080)
            connection.write(request("POST", "/upload", data))
            await connection.drain()
            return json.loads((await answer(connection))[1])

        results = await asyncio.gather(
            *(download() for _ in range(4)), *(upload(data) for data in uploads)
        )
        muxes = in_box(box, "pgrep", "-c", "-x", "spoon-mux").strip()
        tunnel.close()
        return results, muxes

    results, muxes = asyncio.run(use())
    for status, body in results[:4]:
        assert status == b"HTTP/1.1 200 OK" and body == APP_CHUNK * ((4 << 20) // len(APP_CHUNK))
    for seen, data in zip(results[4:], uploads, strict=True):
        assert seen == {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert muxes == "1", "eight connections, one process in the box"
    assert in_box(box, "pgrep", "-c", "socat").strip() == "0"


REFUSER = """
import socket
server = socket.create_server(("127.0.0.1", 8090))
while True:
    connection, _ = server.accept()
    connection.recv(1024)
    connection.sendall(b"HTTP/1.1 413 Too Large\\r\\nContent-Length: 0\\r\\n"
                       b"Connection: close\\r\\n\\r\\n")
    connection.shutdown(socket.SHUT_WR)  # a lingering close, as real servers make
    connection.settimeout(2)
    try:
        while connection.recv(65536):
            pass
    except OSError:
        pass
    connection.close()
"""


async def filled(connection, timeout=30):
    """Wait until a connection nobody reads holds what the box sent, and no
    more comes: the window is full."""
    deadline = time.monotonic() + timeout
    held = -1
    while connection.unread != held or not held:
        assert time.monotonic() < deadline, "the window never filled"
        held = connection.unread
        await asyncio.sleep(0.5)  # full is when it stopped growing since the last look


async def until_in_box(box, argv):
    """Wait until argv succeeds in the box."""

    async def succeeds() -> bool:
        return (await asyncio.to_thread(docker_engine.exec_run, box.container_name, argv))[0] == 0

    await until_async(succeeds, f"{argv} never succeeded in the box")


def test_a_server_that_answers_before_reading_an_upload_is_heard(box):
    """A 413 to a large upload: the answer comes back, not a broken connection."""
    docker_engine.exec_run(
        box.container_name,
        ["sh", "-c", f"setsid python3 -c '{REFUSER}' >/dev/null 2>&1 &"],
        user="1000",
    )
    wait_listening(box.username, 8090)

    async def use():
        tunnel = await tunnels.Tunnel.open(box)
        connection = tunnel.connect(8090)
        connection.write(request("POST", "/upload", os.urandom(8 << 20)))
        await connection.drain()
        head, _ = await answer(connection)
        tunnel.close()
        return head

    assert asyncio.run(use()).startswith(b"HTTP/1.1 413")


def test_a_reader_that_stops_holds_up_no_other_connection(box):
    async def use():
        tunnel = await tunnels.Tunnel.open(box)
        stalled = tunnel.connect(8080)
        stalled.write(request("GET", "/big?mb=50"))
        await filled(stalled)  # the box sends until the window is full, then waits
        quick = tunnel.connect(8080)
        quick.write(request("GET", "/headers"))
        started = time.monotonic()
        head, _ = await asyncio.wait_for(answer(quick), 10)
        waited = time.monotonic() - started
        held = stalled.unread
        _, body = await answer(stalled)
        tunnel.close()
        return head, waited, held, len(body)

    head, waited, held, length = asyncio.run(use())
    assert head.startswith(b"HTTP/1.1 200"), head
    assert waited < 5, "answered beside a stalled download"
    assert 0 < held <= tunnels.WINDOW, "Spoon holds at most a window of an unread connection"
    assert length == 50 << 20, "and the stalled one still gets every byte"


def test_nothing_listening_and_a_bad_port(box):
    """(This engine's boxes have no IPv6 loopback, so a server on ::1 only is
    not tried here; spoon-mux tries ::1 after 127.0.0.1.)"""

    async def use():
        tunnel = await tunnels.Tunnel.open(box)
        refused = []
        for port in (8999, 0, 70000):
            connection = tunnel.connect(port)
            connection.write(request("GET", "/"))
            with pytest.raises(tunnels.NothingListens):
                await connection.opened()
            try:
                await connection.read()
            except tunnels.NothingListens:
                refused.append(port)
        after = tunnel.connect(8080)
        await after.opened()
        after.write(request("GET", "/headers"))
        head, _ = await answer(after)
        tunnel.close()
        return refused, head

    refused, head = asyncio.run(use())
    assert refused == [8999, 0, 70000]
    assert head.startswith(b"HTTP/1.1 200"), "the tunnel carries on"


def test_closing_ends_the_connection_and_the_process_in_the_box(box):
    async def use():
        tunnel = await tunnels.Tunnel.open(box)
        connection = tunnel.connect(8080)
        connection.write(request("GET", "/big?mb=50"))
        assert await connection.read()
        connection.close()
        await until_async(
            lambda: asyncio.to_thread(lambda: connections_to(box.username, 8080) == 0),
            "the server's connection outlived ours",
        )
        tunnel.close()

    asyncio.run(use())
    until(
        lambda: in_box(box, "pgrep", "-c", "-x", "spoon-mux").strip() == "0",
        "spoon-mux outlived its tunnel",
    )


def test_a_box_that_stops_ends_its_tunnel(box):
    async def use():
        tunnel = await tunnels.Tunnel.open(box)
        connection = tunnel.connect(8080)
        connection.write(request("GET", "/big?mb=500"))
        assert await connection.read()
        await asyncio.to_thread(lifecycle.stop_box, box, remove=False)
        _, rest = await asyncio.wait_for(answer(connection), 30)
        await asyncio.wait_for(tunnel.reading, 10)
        return len(rest), tunnel.alive()

    length, alive = asyncio.run(use())
    assert length < 500 << 20 and not alive


def test_a_box_without_spoon_mux_gets_a_relay_per_connection(box):
    docker_engine.exec_run(box.container_name, ["rm", tunnels.MUX], user="0")

    async def use():
        try:
            await tunnels.Tunnel.open(box)
        except tunnels.Unavailable as exc:
            said = str(exc)
        hold = upstream.hold(box)
        await hold.ready.wait()
        connection = await hold.new_connection(8080)
        connection.write(request("GET", "/headers"))
        head, _ = await answer(connection)
        hold.broken()
        with contextlib.suppress(asyncio.CancelledError):
            await hold.task
        return said, type(connection), head

    said, kind, head = asyncio.run(use())
    assert "spoon-mux did not start" in said and "command not found" in said
    assert kind is upstream.Relay and head.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    "sent",
    [
        "H.pack(2, 1, 1 << 30)",  # a frame longer than any allowed
        f"(H.pack(2, 1, {tunnels.CHUNK}) + bytes({tunnels.CHUNK}))"  # past the window
        f" * {tunnels.WINDOW // tunnels.CHUNK + 1}",
        "H.pack(5, 1, 1) + b'x'",  # an ACK that is no count
    ],
    ids=["long frame", "past the window", "bad ack"],
)
def test_a_box_side_that_breaks_the_frames_ends_its_tunnel(box, sent):
    """The box is the user's: whatever stands in for spoon-mux, Spoon's memory stays bounded."""
    assert (tunnels.DATA, tunnels.ACK, tunnels.READY) == (2, 5, 7)
    opened = len(tunnels.HEADER.pack(tunnels.OPEN, 1, 4) + b"8080")
    script = (  # ready; then, once Spoon opened connection 1, what is sent
        "import struct, sys; H = struct.Struct('>BII'); out = sys.stdout.buffer; "
        "out.write(H.pack(7, 0, 0)); out.flush(); "
        f"sys.stdin.buffer.read({opened}); out.write({sent}); out.flush(); "
        "sys.stdin.buffer.read()"
    )

    async def use():
        process = await processes.open_process(box, ["python3", "-c", script], stdin=True)
        tunnel = tunnels.Tunnel(process)
        await asyncio.wait_for(tunnel.ready, 10)
        connection = tunnel.connect(8080)
        await asyncio.wait_for(tunnel.reading, 10)
        connection.write(b"more")  # dropped: the connection is over
        await connection.drain()
        return connection.unread, connection.over

    unread, over = asyncio.run(use())
    assert unread <= tunnels.WINDOW + tunnels.CHUNK and over == b"", "ended, its memory bounded"


def test_frames_spoon_mux_cannot_read_end_it_quietly(box):
    """Garbage on its input: it ends, and so does every connection it carried."""
    code, out = docker_engine.exec_run(
        box.container_name,
        ["sh", "-c", f"printf 'garbage and more garbage' | {tunnels.MUX}; echo exit $?"],
        user="1000",
    )
    assert out.endswith(b"exit 0\n")
    assert out.startswith(tunnels.HEADER.pack(tunnels.READY, 0, 0))


def test_the_frame_format_is_the_same_on_both_sides():
    mux = open("images/job/rootfs/usr/local/bin/spoon-mux").read()
    assert 'HEADER = struct.Struct(">BII")' in mux and tunnels.HEADER.format == ">BII"
    kinds = "OPEN, DATA, EOF, CLOSE, ACK, CLOSED, READY, OPENED, LISTEN, UNLISTEN, ACCEPTED"
    assert f"{kinds} = range(1, 12)" in mux
    assert f"ACCEPTED_FROM = 1 << {tunnels.ACCEPTED_FROM.bit_length() - 1}" in mux
    assert (tunnels.OPEN, tunnels.READY, tunnels.OPENED) == (1, 7, 8)
    assert f"WINDOW = 1 << {tunnels.WINDOW.bit_length() - 1}" in mux
    assert struct.calcsize(">BII") == 9


def test_a_socket_in_the_box_sends_its_connections_through_the_tunnel(box):
    """What agent forwarding needs: a UNIX socket in the box, private to its user."""
    path = "/tmp/spoon-test-listen/agent.sock"

    async def use():
        tunnel = await tunnels.Tunnel.open(box)
        listener = tunnel.listen(path)
        await until_in_box(box, ["test", "-S", path])  # spoon-mux listens there
        client = await processes.open_process(
            box, ["python3", "-c", CLIENT.format(path=path)], stdin=True
        )
        connection = await asyncio.wait_for(listener.accept(), 10)
        assert await connection.read() == b"hello from the box"
        connection.write(b"hello back")
        await connection.drain()
        said = await client.read()
        mode = in_box(box, "stat", "-c", "%a %U", path, "/tmp/spoon-test-listen").split()
        listener.close()
        await until_in_box(box, ["test", "!", "-e", "/tmp/spoon-test-listen"])
        gone = in_box(box, "ls", "/tmp")
        tunnel.close()
        return said, mode, gone

    said, mode, gone = asyncio.run(use())
    assert said == b"hello back"
    assert mode == ["600", box.username, "700", box.username]
    assert "spoon-test-listen" not in gone, "the socket and its folder go with the listener"


CLIENT = """
import socket
s = socket.socket(socket.AF_UNIX)
s.connect("{path}")
s.sendall(b"hello from the box")
print(s.recv(100).decode(), end="", flush=True)
"""
