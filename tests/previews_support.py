"""Reaching previews of a real Spoon server (tests.support.SpoonServer) as a
browser would, on loopback: a Host header names the preview, cookies are
kept per host, and the sign-in through Spoon is followed."""

import base64
import http.client
import io
import json
import re
import tarfile
import urllib.parse
from pathlib import Path

from django.conf import settings

from boxes import docker_engine
from tests.waits import until

APP = Path(__file__).parent / "previewapp.py"
VITE = Path(__file__).parent / "vite"
VITE_PORT = 5173  # tests/vite/app/vite.config.js


class PreviewClient:
    def __init__(self, server):
        self.port = server.port
        self.server = server
        self.spoon = f"localhost:{server.port}"
        self.session = ""
        self.cookies: dict[str, str] = {}

    def server_log(self) -> str:
        server = self.server
        while isinstance(server, PreviewClient):
            server = server.server
        return server.log_path.read_text()

    def host(self, port: int, box: str) -> str:
        return f"{port}--{box}.localhost:{self.port}"

    def request(self, host, method="GET", path="/", headers=None, body=None, cookie=True):
        """(response, body) of one request on a connection of its own."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            response = self.send(connection, host, method, path, headers, body, cookie)
            return response, response.read()
        finally:
            connection.close()

    def send(self, connection, host, method="GET", path="/", headers=None, body=None, cookie=True):
        """Send on a connection the caller keeps (keep-alive); the response unread."""
        headers = {"Host": host, **(headers or {})}
        if cookie and host in self.cookies:
            headers["Cookie"] = "; ".join(filter(None, [headers.get("Cookie"), self.cookies[host]]))
        connection.request(method, path, body=body, headers=headers)
        return connection.getresponse()

    def log_in(self, username: str, password: str) -> None:
        response, page = self.request(self.spoon, "GET", "/login/")
        csrf = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie")).group(1)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token}
        )
        headers = {
            "Cookie": f"csrftoken={csrf}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"http://{self.spoon}/login/",
        }
        response, _ = self.request(self.spoon, "POST", "/login/", headers, form)
        self.session = re.search(r"sessionid=([^;]+)", response.getheader("Set-Cookie")).group(1)

    def spoon_api(self, method, path, data=None):
        """(status, JSON) of Spoon's API as the logged-in user, with a CSRF
        token and cookie taken from one of Spoon's pages."""
        signed_in = {"Cookie": f"sessionid={self.session}"}
        response, page = self.request(self.spoon, "GET", "/", signed_in)
        csrf = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie") or "").group(1)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        headers = {
            "Cookie": f"sessionid={self.session}; csrftoken={csrf}",
            "X-CSRFToken": token,
            "Content-Type": "application/json",
            "Referer": f"http://{self.spoon}/",
        }
        body = json.dumps(data) if data is not None else None
        response, answer = self.request(self.spoon, method, path, headers, body)
        return response.status, json.loads(answer or b"{}")

    def sign_in(self, host: str, path: str = "/"):
        """Follow a preview's sign-in through Spoon; the last answer."""
        response, body = self.request(host, "GET", path, cookie=False)
        assert response.status == 302, (response.status, body[:300])
        spoon = urllib.parse.urlsplit(response.getheader("Location"))
        assert spoon.netloc == self.spoon and spoon.path == "/previews/open"
        response, body = self.request(
            spoon.netloc, "GET", f"{spoon.path}?{spoon.query}",
            {"Cookie": f"sessionid={self.session}"},
        )  # fmt: skip
        if response.status != 302:
            return response, body
        back = urllib.parse.urlsplit(response.getheader("Location"))
        assert back.netloc == host, back
        response, body = self.request(host, "GET", f"{back.path}?{back.query}", cookie=False)
        if response.status == 302:
            self.cookies[host] = response.getheader("Set-Cookie").split(";")[0]
        return response, body

    def until_up(self, host: str, path: str = "/", timeout: float = 60):
        """Requests until the box has started (no more "starting" pages)."""
        return until(
            lambda: (answer := self.request(host, "GET", path))[0].status != 503 and answer,
            "the box never started",
            timeout,
            every=0.5,
        )


def run_app(username: str, port: int, address: str = "127.0.0.1") -> None:
    """tests/previewapp.py serving port in the user's running box."""
    box = f"spoon-box-{username}"
    code = base64.b64encode(APP.read_bytes()).decode()
    uid = str(settings.SPOON_BOX_UID)
    docker_engine.exec_run(box, ["sh", "-c", f"echo {code} | base64 -d > /tmp/previewapp.py"],
                           user=uid)  # fmt: skip
    start = f"setsid python3 /tmp/previewapp.py {port} {address} >/tmp/app-{port}.log 2>&1 &"
    docker_engine.exec_run(box, ["sh", "-c", start], user=uid)
    wait_listening(username, port)


def run_vite(username: str) -> int:
    """A real Vite dev server (tests/vite: installed on the host by
    scripts/setup --test, since boxes here have no network) serving
    tests/vite/app in the user's running box; returns its port."""
    box, uid = f"spoon-box-{username}", settings.SPOON_BOX_UID
    archive = io.BytesIO()

    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = uid
        return info

    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name in ("package.json", "node_modules", "app"):
            tar.add(VITE / name, arcname=f"vite/{name}", filter=owned)
    docker_engine.put_archive(box, "/tmp", archive.getvalue())
    start = "cd /tmp/vite/app && setsid node ../node_modules/vite/bin/vite.js >/tmp/vite.log 2>&1 &"
    docker_engine.exec_run(box, ["sh", "-c", start], user=str(uid))
    wait_listening(username, VITE_PORT)
    return VITE_PORT


def wait_listening(username: str, port: int) -> None:
    box = f"spoon-box-{username}"
    until(
        lambda: f":{port} " in docker_engine.exec_run(box, ["ss", "-Hltn"])[1].decode(),
        f"nothing listened on {port}",
    )


def connections_to(username: str, port: int) -> int:
    """TCP connections open to port in the user's box now, as its loopback sees them."""
    code, out = docker_engine.exec_run(
        f"spoon-box-{username}", ["ss", "-Htn", "state", "established", f"( dport = :{port} )"]
    )
    return len(out.decode().splitlines())
