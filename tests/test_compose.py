"""deploy/compose brought up as an operator would (deploy/compose/up): sign
in through its nginx, open a terminal over the WebSocket, type in the box,
and take everything down again."""

import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import urllib.request

import pytest

from boxes import docker_engine
from tests.support import REPO, free_port, type_in_terminal
from tests.waits import until

pytestmark = pytest.mark.slow

METRICS_TOKEN = "compose-test-metrics-token"
COMPOSE = ["docker-compose", "-f", str(REPO / "deploy/compose/compose.yaml")]


@pytest.fixture
def compose(engine):
    """The compose project, up; its port, its environment and its name."""
    name = f"spoonsmoke{secrets.token_hex(4)}"
    port, ssh_port = free_port(), free_port()
    env = {
        **os.environ,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SPOON_ENCRYPTION_KEYS": base64.b64encode(os.urandom(32)).decode(),
        "SPOON_INSTANCE": name,
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "SPOON_BOX_NETWORK": "none",
        "SPOON_PUBLISH": f"127.0.0.1:{port}",
        "SPOON_SSH_PUBLISH": f"127.0.0.1:{ssh_port}",
        "SPOON_METRICS_TOKEN": METRICS_TOKEN,
        "ALLOWED_HOSTS": "localhost",
    }
    up = subprocess.run(
        [REPO / "deploy/compose/up", "-p", name],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        yield port, env, name
    finally:
        logs = subprocess.run(
            [*COMPOSE, "-p", name, "logs", "--no-color"],
            env=env, capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
        subprocess.run(
            [*COMPOSE, "-p", name, "down", "-v", "--remove-orphans", "-t", "5"],
            env=env, capture_output=True, timeout=300,
        )  # fmt: skip
        for box in docker_engine.list_containers({"spoon.instance": name}):
            docker_engine.remove_container(box.name)
        subprocess.run(
            ["sh", "-c", f"docker volume ls -q --filter label=spoon.instance={name} | "
             "xargs -r docker volume rm"], capture_output=True, timeout=120,
        )  # fmt: skip
        print(logs[-5000:])


def get(port, path, headers=None, data=None, method=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method=method,
        headers={"Host": f"localhost:{port}", **(headers or {})},
    )  # fmt: skip
    opener = urllib.request.build_opener(NoRedirects)
    try:
        with opener.open(request, timeout=60) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers, refused.read()


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def cookie(headers, name):
    found = re.search(rf"{name}=([^;]+)", " ".join(headers.get_all("Set-Cookie") or []))
    return found.group(1)


def test_compose_signs_in_through_nginx_and_opens_a_terminal(compose):
    port, env, name = compose

    def healthy():
        try:
            status, _, body = get(port, "/healthz", {"Authorization": f"Bearer {METRICS_TOKEN}"})
        except OSError:
            return None
        return status == 200 and json.loads(body)

    health = until(healthy, "never healthy", timeout=240, every=2)
    assert health["database"]["ok"] and health["channel_layer"]["backend"] == "RedisChannelLayer"

    web_log = subprocess.run(
        [*COMPOSE, "-p", name, "logs", "--no-color", "web"],
        env=env, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    password = re.search(r"First user: admin  password: (\S+)", web_log).group(1)

    status, headers, page = get(port, "/login/")
    csrf = cookie(headers, "csrftoken")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    form = f"username=admin&password={password}&csrfmiddlewaretoken={token}".encode()
    status, headers, _ = get(port, "/login/", data=form, headers={
        "Cookie": f"csrftoken={csrf}", "Referer": f"http://localhost:{port}/login/",
        "Content-Type": "application/x-www-form-urlencoded",
    })  # fmt: skip
    assert status == 302, "signed in"
    session = cookie(headers, "sessionid")
    csrf = cookie(headers, "csrftoken")

    status, _, body = get(port, "/terminal/tickets/", data=b"", method="POST", headers={
        "Cookie": f"sessionid={session}; csrftoken={csrf}", "X-CSRFToken": csrf,
        "Referer": f"http://localhost:{port}/terminal/",
    })  # fmt: skip
    assert status == 200, body
    ws_url = json.loads(body)["ws_url"]

    screen = asyncio.run(
        type_in_terminal(port, ws_url, session, b"compose-42", b"echo compose-$((6*7))\r")
    )
    assert b"compose-42" in screen
    boxes = docker_engine.list_containers({"spoon.instance": name})
    assert len(boxes) == 1 and boxes[0].running, "the box runs on the host's engine"

    ssh_port = int(env["SPOON_SSH_PUBLISH"].rsplit(":", 1)[1])

    def gateway_answers() -> bool:
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", ssh_port), timeout=10) as gateway:
                return gateway.recv(64).startswith(b"SSH-2.0-")
        return False

    until(gateway_answers, "the SSH gateway never answered", every=1)  # on its published port
