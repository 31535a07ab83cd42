"""A bare ASGI WebSocket echo: bench/terminal measures daphne's own floor with it."""


async def application(scope, receive, send):
    if scope["type"] != "websocket":
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b"x"})
        elif message["type"] == "websocket.disconnect":
            return
