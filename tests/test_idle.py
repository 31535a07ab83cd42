"""Idle means idle: an open, silent terminal does not keep its box up; open
terminals are warned before an idle stop; after a stop they say why and do
not start the box again by themselves."""

import asyncio
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from boxes import docker_engine, leases, lifecycle, reaper
from boxes.models import Box, Lease
from terminal.consumer import BOX_STOPPED
from tests.terminal_client import TerminalClient
from workspaces import access

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice(engine, make_user, session_cookie):
    user = make_user()
    user.cookie = session_cookie(user)
    return user


async def opened(user) -> TerminalClient:
    client = TerminalClient(user.cookie, await sync_to_async(access.issue)(user))
    assert await client.open()
    await client.read_until(b"$ ")
    return client


def idle_for(user, minutes: int) -> Box:
    box = Box.objects.get(user=user)
    Box.objects.filter(pk=box.pk).update(
        last_activity_at=timezone.now() - timedelta(minutes=minutes)
    )
    return box


async def until_closed(client: TerminalClient, timeout=15.0) -> int:
    return await client.wait_closed(timeout=timeout)


@pytest.mark.both_databases
async def test_an_open_silent_terminal_does_not_keep_its_box(alice):
    client = await opened(alice)
    box = await sync_to_async(idle_for)(alice, minutes=5)
    report = await sync_to_async(reaper.reap)(idle_seconds=60)
    assert report.stopped == 1, "the terminal's lease is not work going on"
    assert await until_closed(client) == BOX_STOPPED
    assert client.statuses[-1] == "stopped"
    assert client.details[-1] == (
        "Your box was stopped after 1 idle minute. Press a key or click here to start it again."
    )
    assert await asyncio.to_thread(docker_engine.container_state, box.container_name) is None


@pytest.mark.parametrize(
    "kind, activity", [(Lease.Kind.TERMINAL, False), (Lease.Kind.PREVIEW, False),
                       (Lease.Kind.STAFF, False), (Lease.Kind.RUN, True)],
)  # fmt: skip
def test_a_heartbeat_is_activity_only_for_work(make_user, settings, kind, activity):
    settings.SPOON_ACTIVITY_WRITE_SECONDS = 0
    box = lifecycle.box_for(make_user())
    lease = leases.acquire(box, kind, "a tab left open")
    idle_for(box.user, minutes=5)
    before = Box.objects.get(pk=box.pk).last_activity_at
    leases.keep(lease)
    after = Box.objects.get(pk=box.pk).last_activity_at
    assert (after > before) is activity, "a silent tab's heartbeat must not keep its box up"


async def test_work_in_the_box_holds_it_and_a_terminal_alone_does_not(alice):
    def reap_with(kind):
        box = lifecycle.ensure_box(alice)
        lease = leases.acquire(box, kind, f"a {kind}")
        idle_for(alice, minutes=5)
        stopped = reaper.reap(idle_seconds=60).stopped
        leases.release(lease)
        return stopped

    assert await sync_to_async(reap_with)(Lease.Kind.RUN) == 0
    assert await sync_to_async(reap_with)(Lease.Kind.DOTFILES) == 0
    assert await sync_to_async(reap_with)(Lease.Kind.TERMINAL) == 1


async def test_an_operators_stop_is_said_and_sticks(alice):
    client = await opened(alice)
    box = await sync_to_async(Box.objects.get)(user=alice)
    await sync_to_async(lifecycle.stop_box)(box)
    assert await until_closed(client) == BOX_STOPPED
    assert client.details[-1].startswith("Your box was stopped by an operator.")
    again = await opened(alice)  # what a keystroke on the page does: a new connection
    assert "connected" in again.statuses
    await again.close()


async def test_terminals_are_warned_before_an_idle_stop_and_a_key_keeps_the_box(alice, settings):
    settings.SPOON_BOX_IDLE_SECONDS = 120
    settings.SPOON_BOX_IDLE_WARNING_SECONDS = 100
    settings.SPOON_ACTIVITY_WRITE_SECONDS = 3600  # only a forced write may move it
    client = await opened(alice)
    await sync_to_async(idle_for)(alice, minutes=1)  # stops in 60 s: inside the warning
    deadline = time.monotonic() + 30
    while "idle" not in client.statuses and time.monotonic() < deadline:
        await client.read(timeout=0.5)
    warned = client.statuses.index("idle")
    assert client.details[warned].endswith("it stops in about 1 min. Type anything to keep it.")
    await client.type("echo kept\r")
    await client.read_until(b"kept\r\n")
    deadline = time.monotonic() + 30
    while client.statuses[-1] != "connected" and time.monotonic() < deadline:
        await client.read(timeout=0.5)
    assert client.statuses[-1] == "connected", "the warning is taken back"
    box = await sync_to_async(Box.objects.get)(user=alice)
    assert timezone.now() - box.last_activity_at < timedelta(seconds=30), "the key kept it"
    await client.close()


def test_the_admin_shows_what_holds_a_box_and_since_when_it_is_idle(client, make_user, engine):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    owner = make_user()
    box = lifecycle.ensure_box(owner)
    leases.acquire(box, Lease.Kind.TERMINAL, "terminal 3f2a")
    idle_for(owner, minutes=7)
    page = client.get("/admin/boxes/box/").content.decode()
    row = page[page.index(box.container_name) :]
    row = row[: row.index("</tr>")]
    assert '<td class="field-held_by"><span title="terminal 3f2a">terminal</span></td>' in row
    assert '<td class="field-idle">for 7\xa0minutes</td>' in row
    leases.acquire(box, Lease.Kind.RUN, "run 5 in proj/main")
    page = client.get("/admin/boxes/box/").content.decode()
    row = page[page.index(box.container_name) :]
    assert '<td class="field-idle">in use</td>' in row[: row.index("</tr>")]
