"""A run's output live over the WebSocket, with the terminal's ticket and Origin rules."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from boxes.models import Box
from spoon.routing import application
from tests.terminal_client import TerminalClient
from tests.waits import gate, open_gate
from workspaces import access, runs
from workspaces.models import Run, Workspace

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(run_id, cookie, ticket, origin="http://localhost"):
    headers = [(b"host", b"localhost"), (b"cookie", cookie.encode()), (b"origin", origin.encode())]
    path = f"/ws/runs/{run_id}/" + (f"?ticket={ticket}" if ticket else "")
    socket = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await socket.connect(timeout=10)
    return socket, connected


async def messages_until(socket, wanted, timeout=60):
    """The messages up to and including the first wanted(message) one, or
    up to the close; and the close code (None if it did not close)."""
    got = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        # Not receive_output(timeout): on a timeout it cancels the application.
        message = await asyncio.wait_for(socket.output_queue.get(), deadline - loop.time())
        if message["type"] == "websocket.close":
            return got, message.get("code", 1000)
        got.append(json.loads(message["text"]))
        if wanted(got[-1]):
            return got, None
    raise AssertionError(f"not closed: {got}")


async def messages_until_closed(socket, timeout=60):
    return await messages_until(socket, lambda message: False, timeout)


def open_gate_of(workspace, path):
    open_gate(Box.objects.get(user=workspace.user), path)


@pytest.fixture
def rows_only(make_user):
    """A workspace that is only a row (no box): its runs are never carried out."""
    return Workspace.objects.create(user=make_user(), spoon="p", branch="main")


@pytest.mark.both_databases
async def test_output_arrives_live_then_the_status(workspace, session_cookie):
    path, wait = gate()
    script = f"echo one; {wait}; echo two; echo three; exit 3"
    run = await sync_to_async(runs.start_run)(workspace, ["sh", "-c", script])
    ticket = await sync_to_async(access.issue)(
        workspace.user, workspace=workspace, opens=access.run_socket(run.pk)
    )
    socket, connected = await connect(
        run.pk, await sync_to_async(session_cookie)(workspace.user), ticket
    )
    assert connected
    first, _ = await messages_until(socket, lambda m: "one" in m.get("text", ""))
    await sync_to_async(open_gate_of)(workspace, path)
    rest, code = await messages_until_closed(socket)
    got = first + rest
    text = "".join(m["text"] for m in got if m["type"] == "output")
    assert text == "one\ntwo\nthree\n"
    assert len([m for m in got if m["type"] == "output" and m["text"]]) >= 2, "in pieces, live"
    assert got[-1] == {
        "type": "status",
        "status": "failed",
        "exit_code": 3,
        "error": "exited with 3",
    }
    assert code == 1000


@pytest.mark.both_databases
async def test_the_status_comes_as_it_changes(workspace, session_cookie):
    path, wait = gate()
    run = await sync_to_async(runs.start_run)(workspace, ["sh", "-c", f"{wait}; echo done"])
    ticket = await sync_to_async(access.issue)(
        workspace.user, workspace=workspace, opens=access.run_socket(run.pk)
    )
    socket, _ = await connect(run.pk, await sync_to_async(session_cookie)(workspace.user), ticket)
    first, _ = await messages_until(socket, lambda m: m.get("status") == "running")
    await sync_to_async(open_gate_of)(workspace, path)
    rest, code = await messages_until_closed(socket)
    got = first + rest
    statuses = [m["status"] for m in got if m["type"] == "status"]
    assert "running" in statuses[:-1], "shown while it runs, not only at the end"
    assert statuses[-1] == "succeeded" and got[-1]["type"] == "status"


@pytest.mark.both_databases
async def test_a_finished_run_sends_what_it_stored(workspace, session_cookie, wait_for_run):
    run = await sync_to_async(runs.start_run)(workspace, ["echo", "done-already"])
    await sync_to_async(wait_for_run)(run)
    ticket = await sync_to_async(access.issue)(
        workspace.user, workspace=workspace, opens=access.run_socket(run.pk)
    )
    socket, _ = await connect(run.pk, await sync_to_async(session_cookie)(workspace.user), ticket)
    got, code = await messages_until_closed(socket)
    assert got[0] == {"type": "output", "text": "done-already\n"}
    assert got[-1]["status"] == "succeeded"


@pytest.mark.both_databases
async def test_ticket_rules(rows_only, make_user, session_cookie):
    workspace = rows_only
    run = await Run.objects.acreate(workspace=workspace, argv=["true"])
    owner_cookie = await sync_to_async(session_cookie)(workspace.user)

    socket, _ = await connect(run.pk, owner_cookie, None)
    assert (await messages_until_closed(socket))[1] == 4401

    other = await sync_to_async(make_user)()
    elsewhere = await Workspace.objects.acreate(user=other, spoon="theirs", branch="main")
    other_ticket = await sync_to_async(access.issue)(
        other, workspace=elsewhere, opens=access.run_socket(run.pk)
    )
    socket, _ = await connect(run.pk, await sync_to_async(session_cookie)(other), other_ticket)
    assert (await messages_until_closed(socket))[1] == 4403, "a ticket for another workspace"

    socket, _ = await connect(run.pk, owner_cookie, other_ticket)
    assert (await messages_until_closed(socket))[1] == 4403, "another user's ticket"

    ticket = await sync_to_async(access.issue)(
        workspace.user, workspace=workspace, opens=access.run_socket(run.pk)
    )
    _, connected = await connect(run.pk, owner_cookie, ticket, origin="http://evil.example")
    assert not connected
    _, connected = await connect(run.pk, owner_cookie, ticket, origin="http://localhost:8081")
    assert not connected, "the same host on another port is another origin"


async def test_a_ticket_opens_only_the_socket_it_was_issued_for(rows_only, session_cookie):
    workspace = rows_only
    run = await Run.objects.acreate(workspace=workspace, argv=["true"], token="run-1")
    other_run = await Run.objects.acreate(workspace=workspace, argv=["true"], token="run-2")
    cookie = await sync_to_async(session_cookie)(workspace.user)
    issue = sync_to_async(access.issue)

    terminal_ticket = await issue(workspace.user, workspace=workspace)
    socket, _ = await connect(run.pk, cookie, terminal_ticket)
    assert (await messages_until_closed(socket))[1] == 4403, "a terminal's ticket"

    other_runs_ticket = await issue(
        workspace.user, workspace=workspace, opens=access.run_socket(other_run.pk)
    )
    socket, _ = await connect(run.pk, cookie, other_runs_ticket)
    assert (await messages_until_closed(socket))[1] == 4403, "another run's ticket"

    run_ticket = await issue(workspace.user, workspace=workspace, opens=access.run_socket(run.pk))
    client = TerminalClient(cookie, run_ticket)
    assert await client.open()
    assert await client.wait_closed() == 4403, "a run's ticket on the terminal"


def test_the_ticket_endpoint(rows_only, make_user):
    workspace = rows_only
    client = Client()
    client.force_login(workspace.user)
    run = Run.objects.create(workspace=workspace, argv=["true"])
    body = client.post(f"/api/workspaces/{workspace.pk}/runs/{run.pk}/ticket").json()
    assert body["ws_url"] == f"/ws/runs/{run.pk}/?ticket={body['ticket']}"
    stranger = Client()
    stranger.force_login(make_user())
    assert stranger.post(f"/api/workspaces/{workspace.pk}/runs/{run.pk}/ticket").status_code == 404
