"""A web app for preview tests, run in a box with the box's own python3 (the
standard library only): python3 previewapp.py PORT [ADDRESS].

  GET  /          a page that opens a WebSocket back to its own host
  GET  /headers   the request's method, path and headers as JSON
  GET  /close     "ok", then the server closes the connection
  GET  /stream    five chunks, 0.2 s apart (chunked)
  GET  /big?mb=N  N MB of bytes, with a Content-Length
  POST /upload    the body's length and sha256 as JSON
  GET  /echo      a WebSocket that sends back each message, text or binary
"""

import base64
import hashlib
import http.server
import json
import socket
import struct
import sys
import time
import urllib.parse

PAGE = b"""<!doctype html><meta charset="utf-8"><title>preview app</title>
<p id="cookies"></p><p id="echo">waiting</p>
<script>
document.getElementById("cookies").textContent = "cookies: [" + document.cookie + "]";
const scheme = location.protocol === "https:" ? "wss" : "ws";
const socket = new WebSocket(`${scheme}://${location.host}/echo`);
const show = (text) => { document.getElementById("echo").textContent = text; };
socket.onopen = () => socket.send("hello over the preview");
socket.onmessage = (event) => show("echo: " + event.data);
socket.onerror = () => show("socket failed");
</script>"""
CHUNK = bytes(range(256)) * 256  # 64 KiB


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once, as real servers do

    def log_message(self, *args):
        pass

    def send(self, status, body, kind="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        if path == "/":
            return self.send(200, PAGE, "text/html; charset=utf-8")
        if path == "/headers":
            headers = {name.lower(): value for name, value in self.headers.items()}
            seen = {"method": self.command, "path": self.path, "headers": headers}
            return self.send(200, json.dumps(seen).encode())
        if path == "/close":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"ok")
            self.close_connection = True
            return None
        if path == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for n in range(5):
                data = f"chunk {n} at {time.monotonic():.3f}\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                time.sleep(0.2)  # chunks apart in time: the test sees them come one by one
            self.wfile.write(b"0\r\n\r\n")
            return None
        if path == "/big":
            size = int(urllib.parse.parse_qs(query).get("mb", ["1"])[0]) * 1024 * 1024
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            for _ in range(size // len(CHUNK)):
                self.wfile.write(CHUNK)
            return None
        return self.send(404, b'{"error": "no such page"}')

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        digest, left = hashlib.sha256(), length
        while left:
            data = self.rfile.read(min(left, 1 << 20))
            digest.update(data)
            left -= len(data)
        self.send(200, json.dumps({"length": length, "sha256": digest.hexdigest()}).encode())

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        ).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 8:  # close: answer it and end
                self.wfile.write(b"\x88\x02" + data[:2])
                return
            if opcode in (1, 2):
                self.wfile.write(frame(opcode, data))
                self.wfile.flush()


def frame(opcode: int, data: bytes) -> bytes:
    if len(data) < 126:
        head = struct.pack("!BB", 0x80 | opcode, len(data))
    elif len(data) < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, len(data))
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, len(data))
    return head + data


class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in (sys.argv[2:] or [""])[0] else socket.AF_INET


if __name__ == "__main__":
    address = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    Server((address, int(sys.argv[1])), Handler).serve_forever()
