"""A run's output live over the WebSocket, with the terminal's ticket and Origin rules."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from spoon.routing import application
from tests.terminal_client import TerminalClient
from workspaces import access, folders, runs

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(run_id, cookie, ticket, origin="http://localhost"):
    headers = [(b"host", b"localhost"), (b"cookie", cookie.encode()), (b"origin", origin.encode())]
    path = f"/ws/runs/{run_id}/" + (f"?ticket={ticket}" if ticket else "")
    socket = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await socket.connect(timeout=10)
    return socket, connected


async def messages_until_closed(socket, timeout=60):
    got = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        # Not receive_output(timeout): on a timeout it cancels the application.
        message = await asyncio.wait_for(socket.output_queue.get(), deadline - loop.time())
        if message["type"] == "websocket.close":
            return got, message.get("code", 1000)
        got.append(json.loads(message["text"]))
    raise AssertionError(f"not closed: {got}")


async def test_output_arrives_live_then_the_status(workspace, session_cookie):
    run = await sync_to_async(runs.start_run)(
        workspace, ["sh", "-c", "echo one; sleep 1; echo two; sleep 1; echo three; exit 3"]
    )
    ticket = await sync_to_async(access.issue)(
        workspace.user, workspace=workspace, opens=access.run_socket(run.pk)
    )
    socket, connected = await connect(
        run.pk, await sync_to_async(session_cookie)(workspace.user), ticket
    )
    assert connected
    got, code = await messages_until_closed(socket)
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


async def test_the_status_comes_as_it_changes(workspace, session_cookie):
    run = await sync_to_async(runs.start_run)(workspace, ["sh", "-c", "sleep 1; echo done"])
    ticket = await sync_to_async(access.issue)(
        workspace.user, workspace=workspace, opens=access.run_socket(run.pk)
    )
    socket, _ = await connect(run.pk, await sync_to_async(session_cookie)(workspace.user), ticket)
    got, code = await messages_until_closed(socket)
    statuses = [m["status"] for m in got if m["type"] == "status"]
    assert "running" in statuses[:-1], "shown while it runs, not only at the end"
    assert statuses[-1] == "succeeded" and got[-1]["type"] == "status"


async def test_a_finished_run_sends_what_it_stored(workspace, session_cookie):
    run = await sync_to_async(runs.start_run)(workspace, ["echo", "done-already"])
    for _ in range(100):
        await sync_to_async(run.refresh_from_db)()
        if run.finished:
            break
        await asyncio.sleep(0.1)
    ticket = await sync_to_async(access.issue)(
        workspace.user, workspace=workspace, opens=access.run_socket(run.pk)
    )
    socket, _ = await connect(run.pk, await sync_to_async(session_cookie)(workspace.user), ticket)
    got, code = await messages_until_closed(socket)
    assert got[0] == {"type": "output", "text": "done-already\n"}
    assert got[-1]["status"] == "succeeded"


async def test_ticket_rules(workspace, make_user, session_cookie):
    run = await sync_to_async(runs.start_run)(workspace, ["true"])
    owner_cookie = await sync_to_async(session_cookie)(workspace.user)

    socket, _ = await connect(run.pk, owner_cookie, None)
    assert (await messages_until_closed(socket))[1] == 4401

    other = await sync_to_async(make_user)()
    elsewhere = await sync_to_async(folders.create_workspace)(other, "theirs", "main")
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


async def test_a_ticket_opens_only_the_socket_it_was_issued_for(workspace, session_cookie):
    run = await sync_to_async(runs.start_run)(workspace, ["true"])
    other_run = await sync_to_async(runs.start_run)(workspace, ["true"], explore=True)
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


def test_the_ticket_endpoint(workspace, make_user):
    client = Client()
    client.force_login(workspace.user)
    run = runs.start_run(workspace, ["true"])
    body = client.post(f"/api/workspaces/{workspace.pk}/runs/{run.pk}/ticket").json()
    assert body["ws_url"] == f"/ws/runs/{run.pk}/?ticket={body['ticket']}"
    stranger = Client()
    stranger.force_login(make_user())
    assert stranger.post(f"/api/workspaces/{workspace.pk}/runs/{run.pk}/ticket").status_code == 404
