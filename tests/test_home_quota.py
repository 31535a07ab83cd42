"""The home quota: measured in the box, shown where users and operators
look, warned of in the terminal, and past it new work is refused with a
sentence until the user makes room."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from boxes import quota, reaper
from boxes.models import Box
from tests import reliability
from tests.terminal_client import TerminalClient
from workspaces import access, folders, runs

pytestmark = pytest.mark.django_db(transaction=True)
MIB = 1024 * 1024


@pytest.fixture
def small_quota(settings):
    settings.SPOON_HOME_QUOTA, settings.SPOON_HOME_QUOTA_BYTES = "8m", 8 * MIB
    settings.SPOON_HOME_MEASURE_SECONDS = 0


def test_a_home_over_its_quota_refuses_new_work_until_room_is_made(
    small_quota, workspace, sh, make_user, wait_for_run, monkeypatch
):
    box = Box.objects.get(user=workspace.user)
    sh(box, "head -c 9M /dev/urandom > ~/big")
    assert any("is over its quota" in line for line in reaper.reap().lines)
    box.refresh_from_db()
    assert quota.usage(box).over and box.home_bytes >= 9 * MIB

    with pytest.raises(
        quota.HomeFull, match=r"A new run refused: your home uses 9\.\d MiB of 8\.0 MiB"
    ):
        runs.start_run(workspace, ["true"])
    client = Client()
    client.force_login(workspace.user)
    refused = client.post(f"/api/workspaces/{workspace.pk}/runs/", json.dumps({"argv": ["true"]}),
                          content_type="application/json")  # fmt: skip
    assert refused.status_code == 507 and "Delete something" in refused.json()["error"]
    assert client.post("/api/dotfiles/apply").status_code == 507
    with pytest.raises(quota.HomeFull):
        folders.create_workspace(workspace.user, "more", "main")
    page = client.get("/").content.decode()
    assert "over its quota; runs and applies are refused" in page

    staff = Client()
    staff.force_login(make_user(is_staff=True, is_superuser=True))
    assert "over its quota" in staff.get("/admin/boxes/box/").content.decode()

    monkeypatch.setattr(quota, "REMEASURE_AFTER", 0)  # as if the user took a while
    sh(box, "rm ~/big")  # room made: the next try measures again
    run = wait_for_run(runs.start_run(workspace, ["echo", "room"]))
    assert run.status == run.Status.SUCCEEDED
    reliability.limit(
        "a home on the host's disk", "`SPOON_HOME_QUOTA` (measured; 20g in the deploy example)",
        "507 and a sentence for new runs, turns, workspaces and applies; a warning in the terminal",
    )  # fmt: skip


async def test_the_terminal_says_when_the_home_is_nearly_full(
    small_quota, engine, make_user, session_cookie, settings
):
    user = await sync_to_async(make_user)()
    client = TerminalClient(await sync_to_async(session_cookie)(user),
                            await sync_to_async(access.issue)(user))  # fmt: skip
    assert await client.open()
    await client.read_until(b"$ ")
    await client.type("head -c 7600K /dev/urandom > ~/nearly; echo wr''itten\r")
    await client.read_until(b"written")  # (a "$ " is there already: the first prompt's)
    await sync_to_async(reaper.reap)()
    deadline = asyncio.get_running_loop().time() + 20
    while not any("Your home is nearly full" in d for d in client.details):
        assert asyncio.get_running_loop().time() < deadline, client.details
        await client.read(timeout=0.5)
    warned = [s for s, d in zip(client.statuses, client.details, strict=True) if "nearly full" in d]
    assert warned[-1] == "warned", "shown as a warning, not as all being well"
    await client.close()
