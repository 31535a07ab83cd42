"""What is another user's does not exist: every URL pattern of the project,
read from the URLconf, walked as a second user, answers for the first
user's things exactly as for missing ones; and every answer under a JSON
endpoint is JSON, errors included."""

import json
import re

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from dotfiles.models import DotfilesRun, OverlayFile, Secret
from spoon.json_api import is_json_path
from spoon.routing import application
from workspaces import access
from workspaces.models import Run, Workspace

pytestmark = pytest.mark.django_db(transaction=True)

METHODS = ["GET", "POST", "PUT", "DELETE"]
MISSING = 987654321
PARAMETER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


def routes(resolvers=None, prefix=""):
    """Every route of the URLconf, as its full `path()` string."""
    for entry in resolvers if resolvers is not None else get_resolver().url_patterns:
        pattern = entry.pattern
        text = pattern._route if isinstance(pattern, RoutePattern) else None
        if text is None:
            continue  # regex routes (a few of the admin's) take no ids of ours
        if isinstance(entry, URLResolver):
            yield from routes(entry.url_patterns, prefix + text)
        elif isinstance(entry, URLPattern):
            yield prefix + text


@pytest.fixture
def alices_things(make_user):
    alice = make_user()
    workspace = Workspace.objects.create(user=alice, spoon="proj", branch="main")
    run = Run.objects.create(workspace=workspace, argv=["true"], token="a" * 32)
    dotfiles_run = DotfilesRun.objects.create(user=alice, trigger=DotfilesRun.Trigger.APPLY_NOW)
    overlay = OverlayFile(user=alice, path=".alicerc")
    overlay.content, overlay.executable = b"alias a=b\n", False
    overlay.save()
    secret = Secret(user=alice, name="ALICE_TOKEN")
    secret.value = "alice-secret-1"
    secret.save()
    return {
        "workspace_id": str(workspace.pk),
        "user_id": str(alice.pk),
        "workspaces run_id": str(run.pk),
        "dotfiles run_id": str(dotfiles_run.pk),
        "path": overlay.path,
        "name": secret.name,
        "alice": alice,
    }


def fill(route: str, things: dict, missing: bool) -> tuple[str, list[str]]:
    """The route with each parameter set to one of alice's things (or a
    missing one); the values used, to blank them out of the answers."""
    used = []

    def value(match):
        name = match["name"]
        if name == "run_id":
            name = ("workspaces " if "workspaces" in route else "dotfiles ") + name
        if name in ("path", "name"):
            chosen = "MISSING_THING" if missing else things[name]
        elif name == "port":  # a port of the requester's own box: there is no one else's
            chosen = "8081" if missing else "8080"
        elif name in things:
            chosen = str(MISSING) if missing else things[name]
        else:  # the admin's ids: as a user who is not staff, all alike
            chosen = str(MISSING) if missing else things["user_id"]
        used.append(chosen)
        return chosen

    return "/" + PARAMETER.sub(value, route), used


def answer(response, used: list[str]) -> tuple:
    text = response.content.decode(errors="replace")
    text += " " + response.get("Location", "")
    for value in used:
        text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", "<id>", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.+-]+", "<time>", text)
    return response.status_code, text, response.get("Content-Type", "").split(";")[0]


def test_another_users_things_answer_as_missing_ones_everywhere(alices_things, make_user):
    bob = Client()
    bob.force_login(make_user())
    compared = 0
    for route in routes():
        if "<" not in route:
            continue
        for method in METHODS:
            mine_url, mine_used = fill(route, alices_things, missing=False)
            missing_url, missing_used = fill(route, alices_things, missing=True)
            theirs = answer(bob.generic(method, mine_url), mine_used)
            missing = answer(bob.generic(method, missing_url), missing_used)
            assert theirs == missing, f"{method} {route}: {theirs[:2]} vs {missing[:2]}"
            if is_json_path(mine_url):
                assert theirs[2] == "application/json", f"{method} {route}: {theirs[2]}"
            compared += 1
    assert compared > 40, "the walk reached the project's routes"


def test_every_json_endpoint_answers_json_even_when_it_refuses(make_user):
    user = make_user()
    client, strict = Client(), Client(enforce_csrf_checks=True)
    client.force_login(user)
    strict.force_login(user)
    refusals = {
        (client, "GET", "/api/no/such/thing"): 404,
        (client, "PATCH", "/api/dotfiles/config"): 405,
        (client, "GET", f"/api/workspaces/{MISSING}/runs/"): 404,
        (client, "GET", f"/api/workspaces/{MISSING}/runs/{MISSING}"): 404,
        (client, "GET", "/api/dotfiles/files/.no-such-file"): 404,
        (client, "GET", "/terminal/tickets/"): 405,
        (strict, "PUT", "/api/dotfiles/config"): 403,  # no CSRF token
        (strict, "POST", "/terminal/tickets/"): 403,
    }
    for (client, method, url), status in refusals.items():
        response = client.generic(method, url)
        assert response.status_code == status, (method, url, response.status_code)
        assert response["Content-Type"] == "application/json", (method, url)
        assert set(json.loads(response.content)) == {"error", "field"}, (method, url)
    assert Client().get("/api/dotfiles/files/").status_code == 401


@pytest.mark.both_databases
def test_a_terminal_ticket_for_anothers_workspace_or_box_is_a_missing_one(alices_things, make_user):
    bob = Client()
    bob.force_login(make_user())
    for field in ("workspace", "owner"):
        key = "workspace_id" if field == "workspace" else "user_id"
        theirs = bob.post("/terminal/tickets/", {field: alices_things[key]})
        missing = bob.post("/terminal/tickets/", {field: str(MISSING)})
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json() == missing.json()
    assert bob.post("/terminal/tickets/", {"workspace": "²"}).status_code == 404


async def test_anothers_run_stream_closes_as_a_missing_one(alices_things, make_user):
    def bob_with_a_workspace():
        bob = make_user()
        client = Client()
        client.force_login(bob)
        workspace = Workspace.objects.create(user=bob, spoon="b", branch="main")
        return bob, workspace, f"sessionid={client.cookies['sessionid'].value}"

    bob, workspace, cookie = await sync_to_async(bob_with_a_workspace)()
    codes = []
    for run_id in (alices_things["workspaces run_id"], MISSING):
        ticket = await sync_to_async(access.issue)(
            bob, workspace=workspace, opens=access.run_socket(run_id)
        )
        socket = WebsocketCommunicator(
            application,
            f"/ws/runs/{run_id}/?ticket={ticket}",
            headers=[(b"host", b"localhost"), (b"cookie", cookie.encode()),
                     (b"origin", b"http://localhost")],
        )  # fmt: skip
        await socket.connect(timeout=10)
        closed = await socket.receive_output(timeout=10)
        codes.append(closed.get("code"))
        await socket.disconnect()
    assert codes == [4403, 4403]
