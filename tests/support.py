"""What tests share that is not a fixture: paths, processes of our own
(manage.py, daphne), ports, the engine's throwaway containers, and the
terminal page's screen. Fixtures are in conftest.py."""

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

from django.conf import settings
from django.db import connection

from boxes import docker_engine
from tests import workers
from tests.waits import until

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


def wait_until_ready(name, timeout=60):
    """Wait for a job-image container's entrypoint to be done, as Spoon
    does: one exec that waits in the container (each exec costs the engine
    a tenth of a CPU-second)."""
    wait = (
        "i=0; until [ -e /run/spoon/ready ]; do "
        f"sleep 0.02; i=$((i+1)); [ $i -lt {timeout * 50} ] || exit 1; done"
    )
    try:
        code, _ = docker_engine.exec_run(name, ["sh", "-c", wait])
    except docker_engine.EngineError:
        code = None  # it exited first
    if code != 0:
        state = docker_engine.inspect_container(name)["State"]
        logs = docker_engine.container_logs(name)
        raise AssertionError(f"{name} was not ready (exit code {state['ExitCode']}): {logs}")


def remove_test_leftovers(instances=None):
    """Containers and volumes of this process's installation ids (or of each
    id named): the tests' own, and boxes Spoon made for them."""
    for instance in instances or [settings.SPOON_INSTANCE, workers.servers_instance()]:
        docker_engine.remove_labeled(f"{TEST_LABEL}={instance}")
        # Boxes made through Spoon carry this run's installation id (the test
        # data directory keeps its own), never a developer's.
        docker_engine.remove_labeled(f"spoon.instance={instance}")


def start_job_container(user="alice", uid=1000, home_volume=None, **environment) -> str:
    """A job-image container hardened like a box, with a home volume, ready;
    its name. The caller removes it (the run's clean-up does, at the latest)."""
    name = f"spoon-test-{uuid.uuid4().hex[:10]}"
    volume = home_volume or name + "-home"
    docker_engine.create_volume(volume, labels={TEST_LABEL: settings.SPOON_INSTANCE})
    docker_engine.run_container(
        settings.SPOON_JOB_IMAGE,
        name=name,
        labels={TEST_LABEL: settings.SPOON_INSTANCE},
        environment={"SPOON_USER": user, "SPOON_UID": str(uid), **environment},
        volumes={volume: {"bind": f"/home/{user}", "mode": "rw"}},
        network="none",
        cap_drop=["ALL"],
        cap_add=["CHOWN", "DAC_OVERRIDE", "FOWNER"],
        security_opt=["no-new-privileges"],
    )
    wait_until_ready(name)
    return name


@contextlib.contextmanager
def one_builder():
    """Held while images are built or checked: test processes running at
    once (xdist workers) build each image once, the others wait and find it
    current."""
    import fcntl

    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(settings.DATA_DIR / "images.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listens(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port now."""
    with contextlib.suppress(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    return False


def wait_for_port(port, timeout=60):
    until(lambda: listens(port), f"nothing listens on {port}", timeout)


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

    def __init__(
        self, data_dir: Path, log_name: str = "daphne.log", log_dir: Path | None = None,
        **environment,
    ):  # fmt: skip
        self.env = {
            **os.environ,
            "SPOON_DATA_DIR": str(data_dir),
            "SPOON_BOX_NETWORK": "none",
            **environment,
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.shell = None  # python()'s, once asked
        # A shared data folder (the test process's, for its keys) is no place
        # for logs: other test processes write theirs there.
        self.log_path = (log_dir or data_dir) / log_name
        own_database = self.env.get("DATABASE_URL") != database_url()
        if "SPOON_INSTANCE" not in environment:
            # Its boxes belong to this test process and go with it; on a
            # database of its own, under an id of their own (servers_instance).
            own = workers.servers_instance() if own_database else settings.SPOON_INSTANCE
            self.env["SPOON_INSTANCE"] = own
        if own_database:  # pytest-django migrated the test database
            manage("migrate", "--noinput", "-v", "0", env=self.env)

    def python(self, code: str) -> str:
        """Run Python code with this server's settings and database, as
        `manage.py shell -c` would; what it printed. One shell serves every
        call (a Django start costs about a CPU-second)."""
        if self.shell is None:
            self.shell = subprocess.Popen(
                [sys.executable, "-m", "tests.django_shell"], cwd=REPO, env=self.env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
        self.shell.stdin.write(json.dumps(code) + "\n")
        self.shell.stdin.flush()
        line = self.shell.stdout.readline()
        assert line, f"the server's shell ended (exit code {self.shell.poll()})"
        answer = json.loads(line)
        assert not answer["error"], answer["error"]
        return answer["printed"]

    def close_shell(self):
        if self.shell is not None:
            self.shell.stdin.close()
            self.shell.wait(timeout=30)
            self.shell = None

    def create_user(self, username, password, staff=False):
        self.python(
            "from django.contrib.auth import get_user_model; "
            f"u = get_user_model().objects.create_user({username!r}, password={password!r}, "
            f"is_staff={staff}, is_superuser={staff})"
        )

    def user_id(self, username) -> int:
        return int(
            self.python(
                "from django.contrib.auth import get_user_model; "
                f"print(get_user_model().objects.get(username={username!r}).pk)"
            )
        )

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
        until(
            lambda: self.process.poll() is not None or listens(self.port),
            lambda _: f"daphne did not listen: {self.output()}",
        )
        assert self.process.poll() is None, f"daphne exited: {self.output()}"
        return self

    def stop(self):
        self.close_shell()
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
        self.close_shell()
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


def spoon_process_env(**extra):
    """For a Spoon process of a test's own that acts on the test's database
    and boxes: its data folder (the keys), installation id, database, and no
    box network; nothing else of this process's environment."""
    return bare_env(
        SPOON_DATA_DIR=str(settings.DATA_DIR),
        SPOON_INSTANCE=settings.SPOON_INSTANCE,
        SPOON_BOX_NETWORK="none",
        DATABASE_URL=database_url(),
        **extra,
    )


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
