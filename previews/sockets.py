"""WebSockets to a preview (a dev server's hot reload, an app's own
sockets): the browser's socket is accepted once the server in the box has
accepted the same upgrade, over a relay of its own, and each message is
passed on whole, text as text and binary as binary, closes included."""

import asyncio
import contextlib

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from boxes import docker_engine
from previews import access, upstream
from previews.gate import admitted, from_same_box, header, held
from previews.hosts import Target

# Set by the handshake itself, or not passed (no compression is negotiated).
NOT_PASSED = {
    b"host", b"connection", b"upgrade", b"origin", b"cookie", b"sec-websocket-key",
    b"sec-websocket-version", b"sec-websocket-extensions", b"sec-websocket-protocol",
}  # fmt: skip
REFUSED = 4403  # closing before accepting answers the browser 403


async def serve_websocket(scope, receive, send, target: Target) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    box, refusal = await admitted(scope, target)
    if refusal or not from_same_box(scope, target):
        return await send({"type": "websocket.close", "code": REFUSED})
    hold, waiting = await held(target, box)
    if waiting:
        return await send({"type": "websocket.close", "code": REFUSED})
    try:
        relay = await hold.new_connection(target.port)
    except docker_engine.EngineError:
        hold.broken()
        return await send({"type": "websocket.close", "code": REFUSED})
    hold.busy += 1
    try:
        await bridge(scope, receive, send, target, relay, hold)
    finally:
        hold.busy -= 1
        hold.used()
        relay.close()


def handshake(scope, target: Target) -> ClientProtocol:
    scheme = "wss" if scope.get("scheme") in ("https", "wss") else "ws"
    path = scope.get("raw_path") or scope["path"].encode()
    if scope.get("query_string"):
        path += b"?" + scope["query_string"]
    protocol = ClientProtocol(
        parse_uri(f"{scheme}://{target.host}{path.decode('latin-1')}"),
        origin=header(scope, b"origin") or None,
        subprotocols=scope.get("subprotocols") or None,
        max_size=None,
    )
    request = protocol.connect()
    for name, value in scope["headers"]:
        if name.lower() not in NOT_PASSED:
            request.headers[name.decode("latin-1")] = value.decode("latin-1")
    cookie = access.without_our_cookie(header(scope, b"cookie"), scheme)
    if cookie:
        request.headers["Cookie"] = cookie
    protocol.send_request(request)
    return protocol


async def bridge(scope, receive, send, target, relay: upstream.Connection, hold) -> None:
    protocol = handshake(scope, target)
    flush(protocol, relay)
    response = None
    try:
        while response is None:
            data = await relay.read()
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            events = protocol.events_received()
            if events and isinstance(events[0], Response):
                response, events = events[0], events[1:]
            elif not data:
                break
    except upstream.NothingListens:
        response = None
    if response is None or response.status_code != 101 or protocol.handshake_exc:
        return await send({"type": "websocket.close", "code": REFUSED})
    await send({"type": "websocket.accept", "subprotocol": protocol.subprotocol,
                "headers": []})  # fmt: skip
    from_box = asyncio.create_task(box_to_browser(protocol, relay, send, events, hold))
    from_browser = asyncio.create_task(browser_to_box(protocol, relay, receive, hold))
    _, pending = await asyncio.wait({from_box, from_browser}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def flush(protocol: ClientProtocol, relay: upstream.Connection) -> None:
    for data in protocol.data_to_send():
        if data:
            relay.write(data)


async def box_to_browser(protocol, relay, send, events, hold) -> None:
    message, opcode = bytearray(), None
    while True:
        for frame in events:
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                message, opcode = bytearray(frame.data), frame.opcode
            elif frame.opcode == Opcode.CONT:
                message += frame.data
            elif frame.opcode == Opcode.CLOSE:
                flush(protocol, relay)
                code = protocol.close_rcvd.code if protocol.close_rcvd else 1000
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": code})
                return
            else:
                continue
            if frame.fin:
                hold.used()
                if opcode == Opcode.TEXT:
                    await send({"type": "websocket.send", "text": message.decode()})
                else:
                    await send({"type": "websocket.send", "bytes": bytes(message)})
        flush(protocol, relay)  # pongs
        data = await relay.read()
        if not data:
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": 1001})
            return
        protocol.receive_data(data)
        events = protocol.events_received()


async def browser_to_box(protocol, relay, receive, hold) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            with contextlib.suppress(Exception):
                protocol.send_close(message.get("code", 1000))
                flush(protocol, relay)
                await relay.drain()
            return
        hold.used()
        if message.get("text") is not None:
            protocol.send_text(message["text"].encode())
        elif message.get("bytes") is not None:
            protocol.send_binary(message["bytes"])
        flush(protocol, relay)
        await relay.drain()
