"""Two daphne processes behind the reference nginx, on one PostgreSQL or
SQLite database and one Redis, as deploy/ runs them: a terminal through
nginx, and a run carried out by one process followed live on the other."""

import asyncio
import json
import re
from types import SimpleNamespace

import pytest
import websockets

from boxes.models import Box
from tests.previews_support import PreviewClient
from tests.support import SpoonServer, database_url, reference_nginx, type_in_terminal
from tests.waits import gate, open_gate

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.both_databases]
PASSWORD = "two-processes-password"


@pytest.fixture
def two_processes(engine, redis_url, settings, tmp_path):
    shared = {"DATABASE_URL": database_url(), "REDIS_URL": redis_url}
    logs = tmp_path / "logs"
    logs.mkdir()
    first = SpoonServer(settings.DATA_DIR, "daphne-a.log", logs, **shared).start()
    second = SpoonServer(settings.DATA_DIR, "daphne-b.log", logs, **shared).start()
    try:
        with reference_nginx(tmp_path, [first.port, second.port]) as nginx:
            yield first, second, nginx
    finally:
        first.stop()
        second.stop()


def signed_in(port, log_path, user) -> PreviewClient:
    client = PreviewClient(SimpleNamespace(port=port, log_path=log_path))
    client.log_in(user.username, PASSWORD)
    return client


def test_a_terminal_through_nginx_and_a_run_followed_on_the_other_process(two_processes, workspace):
    first, second, nginx = two_processes
    user = workspace.user
    user.set_password(PASSWORD)
    user.save()

    # A terminal through nginx, whichever process it lands on.
    behind = signed_in(nginx, first.log_path, user)
    signed = {"Cookie": f"sessionid={behind.session}"}
    response, page = behind.request(behind.spoon, "GET", "/terminal/", signed)
    csrf = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie")).group(1)
    response, body = behind.request(behind.spoon, "POST", "/terminal/tickets/", {
        "Cookie": f"sessionid={behind.session}; csrftoken={csrf}", "X-CSRFToken": csrf,
        "Referer": f"http://{behind.spoon}/terminal/",
    }, b"")  # fmt: skip
    assert response.status == 200, body
    ws_url = json.loads(body)["ws_url"]
    screen = asyncio.run(
        type_in_terminal(nginx, ws_url, behind.session, b"two-42", b"echo two-$((6*7))\r")
    )
    assert b"two-42" in screen

    # A run started on the first process, followed on the second.
    on_first = signed_in(first.port, first.log_path, user)
    path, wait = gate()
    script = f"echo one; {wait}; echo two; echo three"
    status, run = on_first.spoon_api(
        "POST", f"/api/workspaces/{workspace.pk}/runs/", {"argv": ["sh", "-c", script]}
    )
    assert status == 201, run
    on_second = signed_in(second.port, second.log_path, user)
    status, ticket = on_second.spoon_api(
        "POST", f"/api/workspaces/{workspace.pk}/runs/{run['id']}/ticket"
    )
    assert status == 200, ticket

    async def follow():
        arrivals = []
        async with websockets.connect(
            f"ws://localhost:{second.port}{ticket['ws_url']}", host="127.0.0.1",
            port=second.port, origin=f"http://localhost:{second.port}",
            additional_headers={"Cookie": f"sessionid={on_second.session}"},
        ) as socket:  # fmt: skip
            async for frame in socket:
                arrivals.append(json.loads(frame))
                if "one" in arrivals[-1].get("text", ""):
                    # It came while the run went on: the run waits for it to.
                    await asyncio.to_thread(open_gate, box, path)
        return arrivals

    box = Box.objects.get(user=user)
    arrivals = asyncio.run(follow())
    output = [m["text"] for m in arrivals if m["type"] == "output"]
    assert "".join(output) == "one\ntwo\nthree\n"
    assert arrivals[-1]["status"] == "succeeded"
