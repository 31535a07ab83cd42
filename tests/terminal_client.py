"""Driving the terminal WebSocket in tests, in-process, through the whole ASGI stack."""

import asyncio
import json
import re
import time

from channels.testing import WebsocketCommunicator

from spoon.routing import application

# Escape sequences: CSI (cursor moves, erase-line, colours), charset picks,
# and OSC strings (titles) ended by BEL or ST.
ESCAPE = re.compile(
    rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|[()][0-9A-Za-z]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[=>78])"
)
# An escape sequence that may go on in the next read.
UNFINISHED = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*|[()]|\][^\x07\x1b]*)?$")


class TerminalClient:
    """A terminal tab: acks what it reads, like xterm.js's write callback.

    read_until() finds text in the output as sent, or as shown: tmux redraws
    a line (on the status clock's minute, say) as "42", erase to the end of
    the line, then CR LF, and a test waiting for "42\\r\\n" means the line.
    """

    def __init__(self, cookie: str, ticket: str | None, origin: str = "http://localhost", tab=None):
        path = "/ws/terminal/" + (f"?ticket={ticket}" if ticket else "")
        if tab:
            path += f"{'&' if ticket else '?'}tab={tab}"
        headers = [(b"host", b"localhost"), (b"cookie", cookie.encode())]
        if origin:
            headers.append((b"origin", origin.encode()))
        self.ws = WebsocketCommunicator(application, path, headers=headers)
        self.output = bytearray()
        self.shown = bytearray()  # the output without its escape sequences
        self._unfinished = b""
        self.statuses: list[str] = []
        self.details: list[str] = []
        self.errors: list[str] = []  # the error frames' messages
        self.closed_with: int | None = None
        self.ack = True

    async def open(self, cols=80, rows=24):
        connected, _ = await self.ws.connect(timeout=30)
        if connected:
            await self.send_json({"type": "resize", "cols": cols, "rows": rows})
        return connected

    async def send_json(self, message):
        await self.ws.send_to(text_data=json.dumps(message))

    async def type(self, text: str | bytes):
        await self.ws.send_to(bytes_data=text.encode() if isinstance(text, str) else text)

    async def read(self, timeout=1.0) -> dict | None:
        # Not receive_output(): on a timeout it cancels the application.
        if self.ws.future.done():
            self.ws.future.result()  # raise what the consumer raised
        try:
            message = await asyncio.wait_for(self.ws.output_queue.get(), timeout)
        except TimeoutError:
            return None
        if message["type"] == "websocket.close":
            self.closed_with = message.get("code", 1000)
        elif message.get("bytes") is not None:
            self.output += message["bytes"]
            self._show(message["bytes"])
            if self.ack:
                await self.send_json({"type": "ack", "bytes": len(message["bytes"])})
        elif message.get("text") is not None:
            body = json.loads(message["text"])
            if body.get("type") == "status":
                self.statuses.append(body["state"])
                self.details.append(body.get("detail", ""))
            elif body.get("type") == "error":
                self.errors.append(body.get("message", ""))
        return message

    def _show(self, data: bytes) -> None:
        data = self._unfinished + data
        tail = UNFINISHED.search(data)
        self._unfinished = data[tail.start() :] if tail and tail.group() else b""
        self.shown += ESCAPE.sub(b"", data[: len(data) - len(self._unfinished)])

    def holds(self, needle: bytes) -> bool:
        return needle in self.output or needle in self.shown

    async def read_until(self, needle: bytes, timeout=60.0) -> bytes:
        """The output so far, once it holds needle. The timeout is long: a
        passing test never waits for it, and the first read also waits for
        the box to start on a machine busy with other test processes."""
        deadline = time.monotonic() + timeout
        while not self.holds(needle):
            if self.closed_with is not None:
                raise AssertionError(
                    f"closed ({self.closed_with}) before {needle!r}: {self.output[-500:]!r}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {needle!r} within {timeout} s; got {self.output[-500:]!r}"
                )
            await self.read(timeout=0.5)
        return bytes(self.output)

    async def retype_until(self, command: str, needle: bytes, timeout=60.0) -> bytes:
        """Type a command again every 2 s until the output holds needle: for
        what reaches the box a moment after it was sent (a resize)."""
        deadline = time.monotonic() + timeout
        while True:
            await self.type(command + "\r")
            try:
                return await self.read_until(needle, timeout=2)
            except AssertionError:
                if self.closed_with is not None or time.monotonic() > deadline:
                    raise

    async def wait_closed(self, timeout=30.0) -> int:
        deadline = time.monotonic() + timeout
        while self.closed_with is None and time.monotonic() < deadline:
            await self.read(timeout=0.5)
        return self.closed_with

    async def close(self):
        await self.ws.disconnect()
