"""What tests share that is not a fixture: paths, processes of our own
(manage.py, daphne), ports, the engine's throwaway containers, and the
terminal page's screen. Fixtures are in conftest.py."""

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

    def __init__(self, data_dir: Path, **environment):
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
        self.log_path = data_dir / "daphne.log"
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
