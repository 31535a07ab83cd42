"""The Docker Engine restarted under open terminals, a run and a dotfiles
apply: each ends honestly, nothing holds the box for ever, and the next
terminal opens as usual; with live-restore, all of them carry on. The
engine restarted is the machine's own (root, dockerd started by
scripts/ensure-docker or systemd): this module runs last (conftest)."""

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from boxes import docker_engine
from boxes.models import Box, Lease
from dotfiles import materialize
from dotfiles.models import DotfilesRun
from tests import reliability
from tests.support import REPO
from tests.terminal_client import TerminalClient
from tests.waits import until, until_async
from workspaces import access, runs

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine_restart, pytest.mark.slow]
PID_FILE = Path("/var/run/docker.pid")


def restart_engine() -> None:
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "restart", "docker"], check=True, timeout=180)
    else:
        pid = int(PID_FILE.read_text())
        os.kill(pid, signal.SIGTERM)
        until(lambda: not Path(f"/proc/{pid}").exists(), "dockerd did not stop", 90)
        subprocess.run([REPO / "scripts" / "ensure-docker"], check=True, timeout=180)
    docker_engine.version()


async def opened(user, cookie) -> TerminalClient:
    client = TerminalClient(cookie, await sync_to_async(access.issue)(user))
    assert await client.open()
    await client.read_until(b"$ ")
    return client


async def within(condition, timeout: float) -> None:
    """Until condition() (which may use the database) says yes."""
    await until_async(sync_to_async(condition), f"{condition.__name__} within {timeout} s", timeout)


async def printed(run, apply, run_says: str, apply_says: str) -> None:
    """Until the run's output and the apply's log show these."""

    def shown() -> bool:
        run.refresh_from_db()
        apply.refresh_from_db()
        return run_says in run.output and apply_says in apply.log

    await within(shown, timeout=60)


async def apply_ended(apply: DotfilesRun, timeout: float) -> None:
    def ended() -> bool:
        apply.refresh_from_db()
        return apply.status != DotfilesRun.Status.RUNNING

    await within(ended, timeout)


async def assert_no_lease_outlives(user) -> None:
    """Each holder lets its lease go just after recording its end: within
    seconds, none is live."""

    def none_live() -> bool:
        return not Lease.objects.live().filter(box__user=user).exists()

    await within(none_live, timeout=10)


def reload_engine(live_restore: bool) -> None:
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "reload", "docker"], check=True, timeout=60)
    else:
        os.kill(int(PID_FILE.read_text()), signal.SIGHUP)
    until(
        lambda: docker_engine._client().info()["LiveRestoreEnabled"] == live_restore,
        "dockerd did not reload its configuration",
        30,
    )


@pytest.fixture
def live_restore():
    """The engine keeps containers running while it restarts (daemon.json,
    reloaded with SIGHUP), and is as it was after the test."""
    config = Path("/etc/docker/daemon.json")
    before = config.read_text() if config.exists() else None
    config.parent.mkdir(exist_ok=True)
    config.write_text(json.dumps({**json.loads(before or "{}"), "live-restore": True}))
    reload_engine(live_restore=True)
    yield
    # Written, not removed, first: dockerd keeps what it has when the file is gone.
    config.write_text(before or json.dumps({"live-restore": False}))
    reload_engine(live_restore=bool(json.loads(before or "{}").get("live-restore")))
    if before is None:
        config.unlink()


def slow_apply(user, sh, install="#!/bin/sh\necho applying\nsleep 120\n") -> DotfilesRun:
    """An apply whose install script is still running."""
    from tests.test_dotfiles_apply import configure, make_repo

    box = Box.objects.get(user=user)
    configure(box, make_repo(sh, box, {"install.sh": install}, executable=["install.sh"]))
    return materialize.apply_in_background(user, DotfilesRun.Trigger.APPLY_NOW)


@pytest.mark.skipif(os.geteuid() != 0, reason="restarting the machine's dockerd needs root")
async def test_a_restarted_engine_ends_terminals_a_run_and_an_apply_honestly(
    workspace, session_cookie, wait_for_run, settings, sh
):
    settings.SPOON_DOTFILES_URL_SCHEMES = ["file"]  # a repository made in the box
    user = workspace.user
    cookie = await sync_to_async(session_cookie)(user)
    terminals = [await opened(user, cookie), await opened(user, cookie)]
    run = await sync_to_async(runs.start_run)(workspace, ["sh", "-c", "echo begun; sleep 120"])
    apply = await sync_to_async(slow_apply)(user, sh)

    await printed(run, apply, "begun", "applying")
    await asyncio.to_thread(restart_engine)

    for terminal in terminals:
        code = await terminal.wait_closed(timeout=60)
        # The page reconnects after these (not after 4410, a stop it must not undo).
        assert code in (1000, 1011), (code, terminal.errors, terminal.details)
    run = await sync_to_async(wait_for_run)(run, timeout=120)
    assert run.status == run.Status.FAILED
    assert run.error.startswith("The command did not finish"), run.error

    await apply_ended(apply, timeout=180)
    assert apply.status == DotfilesRun.Status.FAILED, apply.log
    assert "spoon: The command did not finish: its box was" in apply.log, apply.log
    assert [step["step"] for step in apply.steps] == ["bash_profile", "repository", "overlay"]
    # The overlay step, attached, meets the box gone or the engine still down.
    overlay_ends = ("is not running (it was stopped or removed)", "does not answer")
    assert any(end in apply.log.splitlines()[-1] for end in overlay_ends), apply.log
    await assert_no_lease_outlives(user)

    again = await opened(user, cookie)
    await again.type("echo back-$((6*7))\r")
    await again.read_until(b"back-42")
    await again.close()
    reliability.survived(
        "dockerd restarted under two terminals, a run and a dotfiles apply",
        "the terminals close, reconnect and come back (the box starts again); the run and "
        'the apply fail with "The command did not finish: ..."',
        "the run's and the apply's ends; no lease outlives them",
    )


COUNT = "for i in $(seq 1 40); do echo line-$i; sleep 0.2; done"
COUNTED = "".join(f"line-{i}\n" for i in range(1, 41))


@pytest.mark.skipif(os.geteuid() != 0, reason="restarting the machine's dockerd needs root")
async def test_with_live_restore_a_run_and_an_apply_carry_on_through_a_restart(
    workspace, session_cookie, wait_for_run, settings, sh, live_restore
):
    settings.SPOON_DOTFILES_URL_SCHEMES = ["file"]
    user = workspace.user
    cookie = await sync_to_async(session_cookie)(user)
    terminal = await opened(user, cookie)
    await terminal.type("echo mark-$((3*3))\r")
    await terminal.read_until(b"mark-9")
    run = await sync_to_async(runs.start_run)(workspace, ["sh", "-c", COUNT])
    apply = await sync_to_async(slow_apply)(user, sh, install=f"#!/bin/sh\n{COUNT}\n")
    box = await Box.objects.aget(user=user)
    before = docker_engine.container_state(box.container_name).id

    await printed(run, apply, "line-3\n", "line-3\n")
    await asyncio.to_thread(restart_engine)
    after = docker_engine.container_state(box.container_name)
    assert after.running and after.id == before, "the box lived through it"
    assert await terminal.wait_closed(timeout=60) in (1000, 1011)
    again = TerminalClient(cookie, await sync_to_async(access.issue)(user))
    assert await again.open()
    await again.read_until(b"mark-9")  # the same tmux, its screen as it was
    await again.close()

    run = await sync_to_async(wait_for_run)(run, timeout=120)
    assert run.status == run.Status.SUCCEEDED, run.error
    assert run.output == COUNTED, "each line once, none lost"

    await apply_ended(apply, timeout=120)
    assert apply.exit_code == 0, apply.log
    assert COUNTED in apply.log and apply.log.count("line-1\n") == 1, apply.log
    await assert_no_lease_outlives(user)
    reliability.survived(
        "dockerd restarted with live-restore under a terminal, a run and a dotfiles apply",
        "the terminal reconnects to the same tmux; the run and the apply carry on and end as "
        "they would have, their output whole and once",
        "their real ends; the box is the same container",
    )
