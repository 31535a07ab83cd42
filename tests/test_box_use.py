"""Using a box: the one context manager that takes a lease, brings the box
up, renews the lease while the block runs and releases it at the end."""

import asyncio
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from boxes import commands, docker_engine, leases, lifecycle, reaper
from boxes.models import Box, Lease
from boxes.use import using_box, using_box_async
from tests.support import REPO, database_url
from tests.waits import until

pytestmark = pytest.mark.django_db(transaction=True)


def leases_of(user):
    return list(Lease.objects.filter(box__user=user).values_list("kind", "holder"))


def test_a_box_in_use_holds_a_lease_of_its_kind_until_the_block_ends(engine, make_user):
    user = make_user()
    with using_box(user, Lease.Kind.RUN, "test run") as box:
        assert leases_of(user) == [("run", "test run")]
        result = commands.run(box, ["sh", "-c", "sleep 0.2; echo done"])
    assert result.ok and result.output == b"done\n"
    assert not Lease.objects.filter(box=box).exists(), "released when the run ends"


def test_an_error_in_the_block_releases_the_lease(engine, make_user):
    user = make_user()
    with pytest.raises(RuntimeError, match="boom"):
        with using_box(user, Lease.Kind.WORKSPACE, "failing"):
            raise RuntimeError("boom")
    assert leases_of(user) == []


def test_a_missing_image_is_a_clear_error_and_leaves_no_lease(engine, make_user):
    user = make_user()
    with pytest.raises(docker_engine.ImageMissing) as missing:
        with using_box(user, Lease.Kind.RUN, "run", image="spoon-test-missing:none"):
            raise AssertionError("the block never starts")
    assert "spoon-test-missing:none" in str(missing.value)
    assert "not present" in str(missing.value)
    assert leases_of(user) == []


def test_an_engine_that_is_down_is_a_readable_error(make_user):
    user = make_user()
    with override_settings(DOCKER_HOST="unix:///nonexistent/docker.sock"):
        with pytest.raises(docker_engine.EngineUnreachable) as down:
            with using_box(user, Lease.Kind.RUN, "run"):
                raise AssertionError("the block never starts")
    assert "unix:///nonexistent/docker.sock does not answer" in str(down.value)
    assert leases_of(user) == []


@pytest.mark.both_databases
def test_the_lease_is_renewed_while_the_block_runs(engine, make_user, settings):
    settings.SPOON_LEASE_SECONDS = 3
    user = make_user()
    with using_box(user, Lease.Kind.WORKSPACE, "workspace page"):
        lease = Lease.objects.get(box__user=user)
        renewed_once(lambda: Lease.objects.get(pk=lease.pk), lease)
    assert not Lease.objects.filter(pk=lease.pk).exists()


def renewed_once(read, lease):
    """Wait until the lease was renewed past its first expiry (the heartbeat
    renews it every third of its life), and is live."""
    until(
        lambda: (renewed := read()).expires_at > lease.expires_at and renewed.is_live,
        "never renewed",
    )


@pytest.mark.both_databases
def test_the_reaper_cannot_stop_the_box_between_lease_and_ensure(engine, make_user, monkeypatch):
    user = make_user()
    box = lifecycle.ensure_box(user)
    Box.objects.filter(pk=box.pk).update(last_activity_at=timezone.now() - timedelta(hours=1))
    real_ensure = lifecycle.ensure_box
    passes = []

    def reap_then_ensure(*args, **kwargs):
        passes.append(reaper.reap(idle_seconds=0))
        return real_ensure(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "ensure_box", reap_then_ensure)
    with using_box(user, Lease.Kind.RUN, "in between") as used:
        assert passes[0].stopped == 0, "the lease, taken first, holds the box"
        assert used.container_id == box.container_id, "the same container, never stopped"
    assert reaper.reap(idle_seconds=0).stopped == 1, "once released, an idle box stops"


HOLD_THEN_DIE = """
import os, signal
from django.contrib.auth import get_user_model
from boxes.models import Lease
from boxes.use import using_box
user = get_user_model().objects.get(pk={pk})
with using_box(user, Lease.Kind.RUN, "a holder that dies"):
    print("holding", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.both_databases
def test_a_holder_that_dies_lets_its_lease_lapse(engine, make_user):
    user = make_user()
    box = lifecycle.ensure_box(user)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "SPOON_INSTANCE": settings.SPOON_INSTANCE,
        "SPOON_BOX_NETWORK": "none",
        "SPOON_LEASE_SECONDS": "6",
    }
    holder = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", HOLD_THEN_DIE.format(pk=user.pk)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert holder.returncode == -9 and "holding" in holder.stdout, holder.stderr
    (lease,) = Lease.objects.filter(box=box)
    assert lease.holder == "a holder that dies" and lease.is_live
    assert reaper.reap(idle_seconds=0).stopped == 0, "held while the lease lives"
    # Waits for the thing itself: the moment its lease ends.
    time.sleep(max((lease.expires_at - timezone.now()).total_seconds(), 0) + 0.2)
    assert not Lease.objects.get(pk=lease.pk).is_live, "no one renews it"
    assert reaper.reap(idle_seconds=0).stopped == 1


async def test_the_async_form_holds_the_box_and_lets_go(engine, make_user):
    user = await sync_to_async(make_user)()
    async with using_box_async(user, Lease.Kind.TERMINAL, "a tab") as box:
        assert await sync_to_async(leases_of)(user) == [("terminal", "a tab")]
        assert box.state == Box.State.RUNNING
    assert await sync_to_async(leases_of)(user) == []


@pytest.mark.both_databases
async def test_the_async_form_renews_while_the_block_runs(engine, make_user, settings):
    settings.SPOON_LEASE_SECONDS = 3
    user = await sync_to_async(make_user)()
    async with using_box_async(user, Lease.Kind.TERMINAL, "a tab"):
        lease = await Lease.objects.aget(box__user=user)
        # In a thread: the heartbeat is on this event loop and must go on.
        await asyncio.to_thread(renewed_once, lambda: Lease.objects.get(pk=lease.pk), lease)
    assert not await Lease.objects.filter(pk=lease.pk).aexists()


@pytest.mark.both_databases
@pytest.mark.parametrize("when", ["taking the lease", "starting the box", "in the block"])
async def test_a_cancelled_holder_releases_its_lease(engine, make_user, when, monkeypatch):
    user = await sync_to_async(make_user)()
    inside = asyncio.Event()
    starting, started = threading.Event(), threading.Event()
    real_ensure = lifecycle.ensure_box

    def ensure_box(*args, **kwargs):
        starting.set()
        try:
            return real_ensure(*args, **kwargs)
        finally:
            started.set()

    monkeypatch.setattr(lifecycle, "ensure_box", ensure_box)

    async def hold():
        async with using_box_async(user, Lease.Kind.TERMINAL, "a tab that closes"):
            inside.set()
            await asyncio.sleep(3600)  # the block goes on until it is cancelled

    task = asyncio.create_task(hold())
    if when == "taking the lease":
        await asyncio.sleep(0)  # one turn of the loop: the task has begun, no more
    elif when == "starting the box":
        assert await asyncio.to_thread(starting.wait, 60)
        assert not inside.is_set(), "a cold box takes longer than that"
    else:
        await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await sync_to_async(leases_of)(user) == []
    if starting.is_set():  # an ensure cut off in its thread goes on there: until it ends
        assert await asyncio.to_thread(started.wait, 60)
    assert await sync_to_async(leases_of)(user) == [], "nothing took it again"


async def test_an_error_in_the_async_block_releases_the_lease(engine, make_user):
    user = await sync_to_async(make_user)()
    with pytest.raises(RuntimeError):
        async with using_box_async(user, Lease.Kind.TERMINAL, "a tab"):
            raise RuntimeError("boom")
    assert await sync_to_async(leases_of)(user) == []


@pytest.mark.both_databases
def test_exclusive_holders_take_turns_and_a_dead_ones_lease_lapses(make_user):
    box = Box.objects.create(user=make_user(), username="turns")
    dead = leases.acquire(box, Lease.Kind.DOTFILES, "died mid-apply", seconds=1, exclusive=True)
    listing = leases.acquire(box, Lease.Kind.DOTFILES, "listing the home")  # not exclusive
    first = leases.acquire(box, Lease.Kind.DOTFILES, "apply 1", exclusive=True)
    second = leases.acquire(box, Lease.Kind.DOTFILES, "apply 2", exclusive=True)
    leases.wait_turn(first)  # only the dead one was before it
    assert timezone.now() >= dead.expires_at, "it waited for the dead one's lease to end"
    assert Lease.objects.get(pk=dead.pk).is_live is False

    def release_later():
        time.sleep(1.0)  # the first apply's own time, which the second must wait out
        leases.release(first)
        connections.close_all()

    threading.Thread(target=release_later).start()
    started = time.monotonic()
    leases.wait_turn(second)
    assert time.monotonic() - started >= 0.9, "it waited for the first apply"
    assert Lease.objects.get(pk=listing.pk).is_live, "a listing never blocks an apply"
