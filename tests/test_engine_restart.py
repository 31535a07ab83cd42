"""The Docker Engine restarted under open terminals and a run: each ends
honestly, nothing holds the box for ever, and the next terminal opens as
usual. The engine restarted is the machine's own (root, dockerd started by
scripts/ensure-docker or systemd): this module runs last (conftest)."""

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from boxes import docker_engine
from boxes.models import Lease
from tests import reliability
from tests.support import REPO
from tests.terminal_client import TerminalClient
from workspaces import access, runs

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine_restart]
PID_FILE = Path("/var/run/docker.pid")


def restart_engine() -> None:
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "restart", "docker"], check=True, timeout=180)
    else:
        pid = int(PID_FILE.read_text())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 90
        while Path(f"/proc/{pid}").exists():
            assert time.monotonic() < deadline, "dockerd did not stop"
            time.sleep(0.2)
        subprocess.run([REPO / "scripts" / "ensure-docker"], check=True, timeout=180)
    docker_engine.version()


async def opened(user, cookie) -> TerminalClient:
    client = TerminalClient(cookie, await sync_to_async(access.issue)(user))
    assert await client.open()
    await client.read_until(b"$ ")
    return client


@pytest.mark.skipif(os.geteuid() != 0, reason="restarting the machine's dockerd needs root")
async def test_a_restarted_engine_ends_terminals_and_a_run_honestly(
    workspace, session_cookie, wait_for_run
):
    user = workspace.user
    cookie = await sync_to_async(session_cookie)(user)
    terminals = [await opened(user, cookie), await opened(user, cookie)]
    run = await sync_to_async(runs.start_run)(workspace, ["sh", "-c", "echo begun; sleep 120"])

    def begun() -> bool:
        run.refresh_from_db()
        return "begun" in run.output

    while not await sync_to_async(begun)():
        await asyncio.sleep(0.2)

    await asyncio.to_thread(restart_engine)

    for terminal in terminals:
        code = await terminal.wait_closed(timeout=60)
        # The page reconnects after these (not after 4410, a stop it must not undo).
        assert code in (1000, 1011), (code, terminal.errors, terminal.details)
    run = await sync_to_async(wait_for_run)(run, timeout=120)
    assert run.status == run.Status.FAILED
    assert run.error.startswith("The command did not finish"), run.error
    live = Lease.objects.live().filter(box__user=user)
    assert not await live.aexists(), [lease async for lease in live]

    again = await opened(user, cookie)
    await again.type("echo back-$((6*7))\r")
    await again.read_until(b"back-42")
    await again.close()
    reliability.survived(
        "dockerd restarted under two terminals and a run",
        "the terminals close, reconnect and come back (the box starts again); the run fails "
        '"The command did not finish: ..."',
        "the run's end; no lease outlives them",
    )
