"""git http-backend behind basic auth, on 127.0.0.1:$HTTP_PORT: a forge's
https, as far as git's side of it goes. Each request is logged to
/srv/http.log with the host it was sent to and what its Authorization
header was (never its value). /moved.git redirects to localhost, another
host as far as git knows."""

import base64
import http.server
import os
import subprocess
import time

EXPECTED = (
    "Basic "
    + base64.b64encode(f"{os.environ['TOKEN_USER']}:{os.environ['TOKEN']}".encode()).decode()
)
DELAY = float(os.environ.get("DELAY", "0"))


def note(line: str) -> None:
    with open("/srv/http.log", "a") as log:
        log.write(line + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.serve()

    def do_POST(self):
        self.serve()

    def serve(self):
        given = self.headers.get("Authorization")
        verdict = "none" if given is None else "right" if given == EXPECTED else "wrong"
        note(f"{self.command} {self.headers.get('Host')}{self.path} auth={verdict}")
        if self.path.startswith("/moved.git/"):
            self.send_response(301)
            where = self.path.replace("/moved.git/", "/dots.git/", 1)
            self.send_header("Location", f"http://localhost:{os.environ['HTTP_PORT']}{where}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if verdict != "right":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        time.sleep(DELAY)  # a slow server, when a test asks for one
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": "/srv/git",
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "REMOTE_USER": "git",
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        out = subprocess.run(
            ["git", "http-backend"], input=self.rfile.read(length), env=env, capture_output=True
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(": ")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["HTTP_PORT"])), Handler)
note("listening")
server.serve_forever()
