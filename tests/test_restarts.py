"""Runs and dotfiles applies outlive the Spoon process that started them:
daphne killed (SIGKILL) or stopped in the middle, a later process follows
the job in the box again and records how it really ended, output complete."""

import asyncio
import contextlib
import json
import urllib.request
from datetime import timedelta

import pytest
import websockets
from django.utils import timezone

from boxes import commands, lifecycle
from tests import reliability
from tests.support import SpoonServer, database_url
from tests.waits import gate, open_gate, until
from workspaces import runs
from workspaces.models import Run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.both_databases, pytest.mark.slow]
LEASE = 10  # seconds: a killed process's claims lapse after this; renewed every third


@pytest.fixture
def spoon_process(engine, settings, tmp_path):
    """spoon_process(name): a daphne on the test database, started; all are
    stopped after the test."""
    started = []

    def start(name, now=True, **environment):
        server = SpoonServer(
            settings.DATA_DIR,
            log_name=f"daphne-{name}.log",
            log_dir=tmp_path,
            DATABASE_URL=database_url(),
            SPOON_LEASE_SECONDS=str(LEASE),
            **environment,
        )
        started.append(server)
        return server.start() if now else server

    yield start
    for server in started:
        if getattr(server, "process", None) and server.process.poll() is None:
            server.stop()


@pytest.fixture
def signed_up(workspace):
    """The workspace, its owner given a password, and its box (read before a
    page's event loop keeps the ORM from this thread)."""
    from tests.test_two_processes import PASSWORD

    workspace.user.set_password(PASSWORD)
    workspace.user.save()
    workspace.box = lifecycle.box_for(workspace.user)
    return workspace


def client_of(server, user):
    """user, signed in to server's API."""
    from tests.test_two_processes import PASSWORD, signed_in

    user.set_password(PASSWORD)
    user.save()
    return signed_in(server.port, server.log_path, user)


def started_in(server, workspace, script):
    """A run started by server (through its API), once its output has begun."""
    client = client_of(server, workspace.user)
    status, body = client.spoon_api(
        "POST", f"/api/workspaces/{workspace.pk}/runs/", {"argv": ["sh", "-c", script]}
    )
    assert status == 201, body
    run = Run.objects.get(pk=body["id"])
    until(lambda: run.refresh_from_db() or "begun" in run.output, "the run never began")
    return run


def in_box(workspace, script) -> str:
    box = lifecycle.box_for(workspace.user)
    return commands.run(box, ["sh", "-c", script]).output.decode()


def test_a_run_goes_on_when_daphne_is_killed_and_the_next_one_records_it(
    workspace, spoon_process, wait_for_run
):
    first = spoon_process("a")
    path, wait = gate()
    run = started_in(first, workspace, f"echo begun; {wait}; echo 'after the kill'; exit 7")
    first.kill()
    open_gate(lifecycle.box_for(workspace.user), path)

    second = spoon_process("b", SPOON_METRICS_TOKEN="m" * 32)
    run = wait_for_run(run, timeout=90)
    assert run.status == Run.Status.FAILED and run.exit_code == 7, run.error
    scrape = urllib.request.Request(
        f"{second.url}/metrics", headers={"Authorization": f"Bearer {'m' * 32}"}
    )
    with urllib.request.urlopen(scrape, timeout=10) as answer:
        assert 'spoon_carried_on_total{kind="run"} 1.0' in answer.read().decode()
    assert run.error == "exited with 7"
    assert run.output == "begun\nafter the kill\n", "nothing lost, nothing twice"
    assert "carrying on with it" in (first.log_path.parent / "daphne-b.log").read_text()
    assert in_box(workspace, "pgrep -fa '^sleep 4' || true") == "", "nothing left running"
    until(lambda: in_box(workspace, "ls ~/.spoon/jobs") == "", "the job is kept", 10)


def test_a_run_that_ended_while_spoon_was_down_is_recorded_with_its_real_end(
    workspace, spoon_process, wait_for_run
):
    first = spoon_process("a")
    path, wait = gate()
    run = started_in(first, workspace, f"echo begun; {wait}; seq 1 20000; echo done")
    first.kill()
    open_gate(lifecycle.box_for(workspace.user), path)  # it ends in the box while no Spoon runs
    exit_status = f"cat ~/.spoon/jobs/{run.token}/exit 2>/dev/null | sed 's/^/exit /'"
    until(lambda: "exit 0" in in_box(workspace, exit_status), "it never ended in the box")
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING

    spoon_process("b")
    run = wait_for_run(run, timeout=90)
    assert run.status == Run.Status.SUCCEEDED and run.exit_code == 0, run.error
    expected = "begun\n" + "".join(f"{i}\n" for i in range(1, 20001)) + "done\n"
    assert run.output == expected


def test_a_stopped_daphne_hands_its_runs_on_at_once(workspace, spoon_process, wait_for_run):
    first = spoon_process("a")
    path, wait = gate()
    run = started_in(first, workspace, f"echo begun; {wait}; echo end")
    first.stop()  # SIGTERM, as systemd stops it for a deploy
    run.refresh_from_db()
    assert run.carried_until is None, "let go of as it stopped: the next one need not wait"

    spoon_process("b")
    open_gate(lifecycle.box_for(workspace.user), path)
    run = wait_for_run(run)
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.output == "begun\nend\n"


def test_a_cancel_from_another_process_ends_an_adopted_run(workspace, spoon_process, wait_for_run):
    first = spoon_process("a")
    run = started_in(first, workspace, "echo begun; sleep 600")
    first.kill()
    spoon_process("b")
    until(lambda: Run.objects.get(pk=run.pk).carrier != run.carrier, "never taken over")

    runs.cancel_run(run)  # from this process: neither daphne
    run = wait_for_run(run, timeout=30)
    assert run.status == Run.Status.CANCELLED
    assert in_box(workspace, "pgrep -f '^sleep 600' || true") == ""


def test_a_box_on_an_image_from_before_jobs_runs_its_commands_attached(workspace, wait_for_run):
    from boxes import docker_engine

    box = lifecycle.box_for(workspace.user)
    docker_engine.exec_run(box.container_name, ["rm", commands.JOB_RUNNER], user="root")
    run = wait_for_run(runs.start_run(workspace, ["sh", "-c", "echo attached; exit 3"]))
    assert run.exit_code == 3 and run.output == "attached\n", run.error


SCHEMES = {"SPOON_DOTFILES_URL_SCHEMES": "https,ssh,file"}


@pytest.fixture
def box_with_dotfiles(engine, make_user, sh):
    """A box whose dotfiles repository's install script says "begun", then
    waits at box.gate; and an overlay file. Its owner has a password."""
    from tests.test_dotfiles_apply import add_file, configure, make_repo
    from tests.test_two_processes import PASSWORD

    box = lifecycle.ensure_box(make_user())
    box.user.set_password(PASSWORD)
    box.user.save()
    box.gate, wait = gate()
    install = f"#!/bin/sh\necho begun\n{wait}\necho installed\ntouch ~/installed\n"
    configure(box, make_repo(sh, box, {"install.sh": install}, executable=["install.sh"]))
    add_file(box, ".spoonrc", b"from the overlay\n")
    return box


def test_an_apply_goes_on_when_daphne_is_killed_and_the_next_one_records_it(
    box_with_dotfiles, spoon_process, sh
):
    from dotfiles.models import DotfilesRun

    box = box_with_dotfiles
    first = spoon_process("a", **SCHEMES)
    status, body = client_of(first, box.user).spoon_api("POST", "/api/dotfiles/apply")
    assert status == 202, body
    run = DotfilesRun.objects.get(pk=body["run"])
    until(lambda: run.refresh_from_db() or "begun" in run.log, "the install script never began")
    first.kill()
    open_gate(box, box.gate)

    spoon_process("b", **SCHEMES)
    until(lambda: run.refresh_from_db() or run.status != "running", "never recorded", 90)
    assert run.status == DotfilesRun.Status.SUCCEEDED, run.log
    assert run.log.count("begun") == 1 and "installed" in run.log, run.log
    assert "Spoon restarted during this apply" in run.log
    assert [s["step"] for s in run.steps if "skipped" not in s].count("repository") == 1
    assert sh(box, "cat ~/.spoonrc; ls ~/installed") == f"from the overlay\n{box.home}/installed"


@pytest.mark.browser
def test_a_page_following_a_run_follows_it_on_across_a_restart(
    signed_up, spoon_process, page, tmp_path
):
    from tests.support import reference_nginx
    from tests.test_two_processes import PASSWORD

    workspace, box = signed_up, signed_up.box
    path, wait = gate()
    first = spoon_process("a")
    second = spoon_process("b", now=False)
    with reference_nginx(tmp_path, [first.port, second.port]) as nginx:
        spoon = f"http://127.0.0.1:{nginx}"
        page.goto(f"{spoon}/login/?next=/workspaces/{workspace.pk}/")
        page.fill("#id_username", workspace.user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{spoon}/workspaces/{workspace.pk}/")
        page.fill("#command", f"sh -c 'echo begun; {wait}; echo after-the-restart'")
        page.click("[data-run-form] button[type=submit]")
        page.wait_for_selector("[data-run-output]:has-text('begun')", timeout=30_000)
        second.start()
        first.stop()  # as a deploy does: the page's run stream closes with it
        open_gate(box, path)

        page.wait_for_selector("[data-run-title][data-status=succeeded]", timeout=90_000)
        shown = page.locator("[data-run-output]").inner_text()
        assert shown.count("begun") == 1 and "after-the-restart" in shown, shown


@pytest.mark.browser
def test_the_dotfiles_page_follows_an_apply_on_across_a_restart(
    box_with_dotfiles, spoon_process, page
):
    from tests.test_two_processes import PASSWORD

    first = spoon_process("a", **SCHEMES)
    page.goto(f"{first.url}/login/?next=/settings/dotfiles/")
    page.fill("#id_username", box_with_dotfiles.user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{first.url}/settings/dotfiles/")
    page.click("[data-apply]")
    page.wait_for_selector("[data-log]:has-text('begun')", timeout=60_000)  # live, mid-script
    first.kill()
    page.wait_for_timeout(3000)  # the page asks meanwhile, and nothing answers

    second = spoon_process("b", now=False, **SCHEMES)
    second.port, second.url = first.port, first.url  # the same address, as after a restart
    second.start()
    open_gate(box_with_dotfiles, box_with_dotfiles.gate)
    page.wait_for_selector("[data-run-status][data-status=succeeded]", timeout=90_000)
    log = page.locator("[data-log]").inner_text()
    assert "installed" in log and "Spoon restarted during this apply" in log, log


def test_a_killed_daphnes_terminal_lease_lapses_and_the_reaper_stops_the_box(
    workspace, spoon_process
):
    """Nothing of a SIGKILLed process holds the box for ever: its terminal's
    lease lapses, the reaper stops the idle box, and the next terminal (on
    the next process) starts it again and opens as usual."""
    from boxes import reaper
    from boxes.models import Box, Lease
    from tests.support import type_in_terminal

    first = spoon_process("a")
    client = client_of(first, workspace.user)

    async def hold_a_terminal_open():
        status, offer = client.spoon_api("POST", "/terminal/tickets/")
        async with websockets.connect(
            f"ws://localhost:{first.port}{offer['ws_url']}", host="127.0.0.1", port=first.port,
            origin=f"http://localhost:{first.port}",
            additional_headers={"Cookie": f"sessionid={client.session}"},
        ) as socket:  # fmt: skip
            await socket.send(json.dumps({"type": "resize", "cols": 100, "rows": 30}))
            screen = b""
            async with asyncio.timeout(120):
                while b"$" not in screen:  # the prompt is up; the process dies under it
                    frame = await socket.recv()
                    screen += frame if isinstance(frame, bytes) else b""
            first.kill()
            with contextlib.suppress(websockets.ConnectionClosed):
                await socket.recv()

    asyncio.run(hold_a_terminal_open())
    box = Box.objects.get(user=workspace.user)
    assert Lease.objects.live().filter(box=box, kind=Lease.Kind.TERMINAL).exists()
    until(lambda: not Lease.objects.live().filter(box=box).exists(), "a lease outlived", LEASE * 3)
    Box.objects.filter(pk=box.pk).update(last_activity_at=timezone.now() - timedelta(hours=1))
    assert reaper.reap().stopped == 1
    assert Box.objects.get(pk=box.pk).state == Box.State.STOPPED

    second = spoon_process("b")
    client = client_of(second, workspace.user)
    status, offer = client.spoon_api("POST", "/terminal/tickets/")
    screen = asyncio.run(
        type_in_terminal(
            second.port, offer["ws_url"], client.session, b"back-42", b"echo back-$((6*7))\r"
        )
    )
    assert b"back-42" in screen
    reliability.survived(
        "daphne killed (SIGKILL) with a terminal open",
        "the next process opens the terminal as usual (the box starts again)",
        "the dead process's lease lapses after SPOON_LEASE_SECONDS; the reaper stops the idle box",
    )
