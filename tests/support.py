"""What tests share that is not a fixture: paths, processes of our own
(manage.py, daphne), ports, the engine's throwaway containers, and the
terminal page's screen. Fixtures are in conftest.py."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from boxes import docker_engine

REPO = Path(__file__).resolve().parent.parent
# Carries this run's installation id (the test data directory keeps its own),
# so two test runs on one engine never clean up each other's containers.
TEST_LABEL = "spoon.test"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_until_ready(name, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = docker_engine.inspect_container(name)["State"]
        if not state["Running"]:
            logs = docker_engine.container_logs(name)
            raise AssertionError(f"{name} exited ({state['ExitCode']}): {logs}")
        code, _ = docker_engine.exec_run(name, ["test", "-e", "/run/spoon/ready"])
        if code == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} was not ready within {timeout} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def manage(*args, env=None, check=True):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env or os.environ.copy(),
        capture_output=True,
        text=True,
        check=check,
        timeout=300,
    )


class SpoonServer:
    """daphne serving spoon.asgi on loopback, with its own data directory."""

    def __init__(self, data_dir: Path, log_name: str = "daphne.log", **environment):
        self.env = {
            **os.environ,
            "SPOON_DATA_DIR": str(data_dir),
            # Its boxes belong to this test run, and are cleaned up with it.
            "SPOON_INSTANCE": settings.SPOON_INSTANCE,
            "SPOON_BOX_NETWORK": "none",
            **environment,
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / log_name
        manage("migrate", "--noinput", "-v", "0", env=self.env)

    def create_user(self, username, password, staff=False):
        code = (
            "from django.contrib.auth import get_user_model; "
            f"u = get_user_model().objects.create_user({username!r}, password={password!r}, "
            f"is_staff={staff}, is_superuser={staff})"
        )
        manage("shell", "-c", code, env=self.env)

    def user_id(self, username) -> int:
        code = (
            "from django.contrib.auth import get_user_model; "
            f"print(get_user_model().objects.get(username={username!r}).pk)"
        )
        return int(manage("shell", "-c", code, env=self.env).stdout.split()[-1])

    def start(self):
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "spoon.asgi:application",
            ],
            cwd=REPO,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"daphne exited: {self.log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"daphne did not listen: {self.log_path.read_text()}")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def kill(self):
        """SIGKILL: nothing of daphne's own gets to run."""
        self.process.kill()
        self.process.wait(timeout=10)
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def bare_env(**extra):
    """Only what a shell needs: no Spoon, Django or Docker variable at all."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DJANGO_SETTINGS_MODULE": "spoon.settings",
        **extra,
    }


def database_url() -> str:
    """The test database, for a process of our own."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


SCREEN_TEXT = """() => {
  const buffer = window.spoonTerminal.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
  return lines.join("\\n");
}"""


def wait_connected(page):
    """The terminal page's status line says connected."""
    page.wait_for_selector("[data-terminal-status][data-state=connected]", timeout=60_000)


def wait_for_screen(page, text, timeout=15_000):
    """The terminal on the page shows text."""
    page.wait_for_function(
        f"(needle) => ({SCREEN_TEXT})().includes(needle)", arg=text, timeout=timeout
    )


@contextlib.contextmanager
def reference_nginx(folder: Path, upstream_ports: list[int]):
    """Debian's nginx on a loopback port of its own, in front of daphne
    processes on upstream_ports (taken in turn), with the reference proxy
    lines (deploy/nginx/spoon-proxy.conf) and a wildcard server name; its port."""
    port = free_port()
    os.chmod(folder, 0o755)
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(mode=0o777)
        os.chmod(path, 0o777)
    servers = " ".join(f"server 127.0.0.1:{p};" for p in upstream_ports)
    (folder / "nginx.conf").write_text(f"""
pid {folder}/nginx.pid;
error_log {folder}/error.log;
# Every terminal is two connections (browser side, daphne side).
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    upstream spoon {{ {servers} }}
    map $http_upgrade $spoon_connection {{ default upgrade; "" close; }}
    server {{
        listen 127.0.0.1:{port};
        server_name localhost *.localhost;
        include {REPO}/deploy/nginx/spoon-proxy.conf;
    }}
}}
""")
    process = subprocess.Popen(
        ["nginx", "-p", str(folder), "-e", str(folder / "error.log"),
         "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
    )  # fmt: skip
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(10)


async def type_in_terminal(port: int, ws_url: str, session: str, expected: bytes, line: bytes):
    """Open the terminal socket at ws_url through 127.0.0.1:port as
    localhost:port, type line at the first prompt, and read until expected
    shows; the screen's bytes."""
    import asyncio
    import json

    import websockets

    async with websockets.connect(
        f"ws://localhost:{port}{ws_url}", host="127.0.0.1", port=port,
        origin=f"http://localhost:{port}", additional_headers={"Cookie": f"sessionid={session}"},
    ) as socket:  # fmt: skip
        await socket.send(json.dumps({"type": "resize", "cols": 100, "rows": 30}))
        screen, typed = b"", False
        async with asyncio.timeout(120):
            while expected not in screen:
                frame = await socket.recv()
                if isinstance(frame, bytes):
                    screen += frame
                    await socket.send(json.dumps({"type": "ack", "bytes": len(frame)}))
                if not typed and b"$" in screen:
                    await socket.send(line)
                    typed = True
        return screen
