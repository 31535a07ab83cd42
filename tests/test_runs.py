"""Runs in a workspace: output kept as it comes, real cancels, honest failures."""

import json
import re
from types import SimpleNamespace

import pytest
from django.test import Client

from boxes import commands, docker_engine, lifecycle
from boxes.models import RegisteredImage
from tests.support import wait_connected, wait_for_screen
from tests.waits import gate, open_gate, until
from workspaces import runs
from workspaces.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


def printed(run, text: str, timeout: float = 60) -> None:
    """Wait until the run's stored output holds text."""
    until(
        lambda: run.refresh_from_db() or text in run.output,
        lambda _: f"never printed {text!r}: {run.output[-300:]!r}",
        timeout,
    )


def test_output_arrives_in_order_while_it_runs_and_is_kept(workspace, wait_for_run):
    path, wait = gate()
    run = runs.start_run(workspace, ["sh", "-c", f"echo line1; {wait}; echo line2; echo line3"])
    printed(run, "line1")
    assert not run.finished, "part of the output is there before the end"
    open_gate(lifecycle.box_for(workspace.user), path)
    run = wait_for_run(run)
    assert run.status == Run.Status.SUCCEEDED and run.exit_code == 0
    assert run.output == "line1\nline2\nline3\n"


def test_output_just_after_a_save_is_saved_soon_not_with_the_next_output(workspace, wait_for_run):
    run = runs.start_run(workspace, ["sh", "-c", "echo a; sleep 0.1; echo b; sleep 120; echo c"])
    printed(run, "a")
    # Within SAVE_EVERY (a quarter second) on an idle machine; c is two minutes away.
    printed(run, "b", timeout=30)
    assert "c" not in run.output
    runs.cancel_run(run)
    wait_for_run(run)


def test_the_run_works_in_the_workspace_folder_with_the_users_secrets(workspace, wait_for_run):
    from dotfiles.models import Secret

    secret = Secret(user=workspace.user, name="RUN_TOKEN")
    secret.value = "run-secret-1"
    secret.save()
    script = 'pwd; [ "$RUN_TOKEN" = run-secret-1 ] && echo has-it; echo $RUN_TOKEN'
    run = wait_for_run(runs.start_run(workspace, ["sh", "-c", script]))
    assert run.output.split() == [
        f"/home/{lifecycle.box_for(workspace.user).username}/Code/proj/main",
        "has-it",
        "***",  # printed, and stored masked (test_redaction)
    ]


def test_cancel_ends_the_process_in_the_box(workspace, wait_for_run):
    run = runs.start_run(workspace, ["sh", "-c", "echo started; sleep 600"])
    printed(run, "started")
    runs.cancel_run(run)
    run = wait_for_run(run)
    assert run.status == Run.Status.CANCELLED
    box = lifecycle.box_for(workspace.user)
    left = commands.run(box, ["sh", "-c", "pgrep -f '^sleep 600' || true"]).output
    assert left == b"", "gone from ps"


def test_a_missing_command_fails_with_the_reason(workspace, wait_for_run):
    run = wait_for_run(runs.start_run(workspace, ["no-such-tool"]))
    assert run.status == Run.Status.FAILED and run.exit_code == 127
    assert run.error == "command not found: no-such-tool"


def test_a_missing_image_fails_with_the_reason(workspace, wait_for_run):
    workspace.image = RegisteredImage.objects.create(name="missing", ref="spoon-test-missing:none")
    workspace.save()
    box = lifecycle.box_for(workspace.user)
    docker_engine.remove_container(box.container_name)
    run = wait_for_run(runs.start_run(workspace, ["true"]))
    assert run.status == Run.Status.FAILED
    assert "spoon-test-missing:none" in run.error and "not present" in run.error


def test_a_box_removed_mid_run_fails_with_the_reason(workspace, wait_for_run):
    run = runs.start_run(workspace, ["sh", "-c", "echo up; sleep 600"])
    printed(run, "up")
    docker_engine.remove_container(lifecycle.box_for(workspace.user).container_name)
    run = wait_for_run(run)
    assert run.status == Run.Status.FAILED
    assert "removed" in run.error or "not running" in run.error, run.error


def test_a_run_past_its_time_limit_is_ended_in_the_box_and_says_so(
    workspace, settings, sh, wait_for_run
):
    settings.SPOON_RUN_TIMEOUT = 5  # room for "started" on a busy machine
    run = wait_for_run(runs.start_run(workspace, ["sh", "-c", "echo started; sleep 600"]))
    assert run.status == Run.Status.FAILED
    assert run.error == "Ended inside the box after 5 seconds, its time limit (SPOON_RUN_TIMEOUT)."
    assert run.output == "started\n"
    assert sh(lifecycle.box_for(workspace.user), "pgrep -f '^sleep 600' || true") == ""


@pytest.mark.both_databases
@pytest.mark.parametrize(
    "stop, reason",
    [
        ("operator", "stopped by an operator"),
        ("recreate", "recreated by an operator"),
        ("reaper", "stopped after 1 idle minute"),
    ],
)
def test_a_run_cut_off_by_its_box_stopping_says_who_stopped_it(
    workspace, wait_for_run, stop, reason
):
    from datetime import timedelta

    from django.utils import timezone

    from boxes import reaper
    from boxes.models import Box, Lease

    run = runs.start_run(workspace, ["sh", "-c", "echo up; sleep 600"])
    printed(run, "up")
    box = lifecycle.box_for(workspace.user)
    if stop == "operator":
        lifecycle.stop_box(box)
    elif stop == "recreate":
        lifecycle.recreate_box(box)
    else:  # the run's holder died: its lease lapsed, and the box went idle
        Lease.objects.filter(box=box).update(expires_at=timezone.now() - timedelta(seconds=1))
        Box.objects.filter(pk=box.pk).update(last_activity_at=timezone.now() - timedelta(hours=1))
        assert reaper.reap(idle_seconds=60).stopped == 1
    run = wait_for_run(run)
    assert run.status == Run.Status.FAILED
    assert run.error == f"The command did not finish: its box was {reason} while it ran."


def test_an_engine_that_is_gone_fails_with_the_reason(workspace, settings):
    run = Run.objects.create(workspace=workspace, argv=["true"], token="t" * 32)
    from django.test import override_settings

    with override_settings(DOCKER_HOST="unix:///nonexistent/docker.sock"):
        runs.carry_out(run)
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and "does not answer" in run.error


@pytest.mark.both_databases
def test_one_run_per_checkout_at_a_time(workspace, wait_for_run):
    first = runs.start_run(workspace, ["sleep", "2"])
    with pytest.raises(runs.Busy):
        runs.start_run(workspace, ["true"])
    runs.cancel_run(first)
    wait_for_run(first)


@pytest.mark.parametrize("argv", [[], "ls", [""], ["ls", 5], ["a\0b"]])
def test_bad_argv_is_refused(workspace, argv):
    with pytest.raises(Exception, match="argv|argument|command"):
        runs.start_run(workspace, argv)


def test_the_api_lists_starts_and_cancels(workspace, make_user, wait_for_run):
    client = Client()
    client.force_login(workspace.user)
    url = f"/api/workspaces/{workspace.pk}/runs/"
    made = client.post(
        url, json.dumps({"argv": ["sh", "-c", "sleep 30"]}), content_type="application/json"
    )
    assert made.status_code == 201
    run_id = made.json()["id"]
    assert (
        client.post(
            url, json.dumps({"argv": ["true"]}), content_type="application/json"
        ).status_code
        == 409
    )
    assert (
        client.post(url, json.dumps({"argv": "ls"}), content_type="application/json").json()[
            "field"
        ]
        == "argv"
    )
    assert client.get(url).json()["runs"][0]["id"] == run_id
    wait_for_run(Run.objects.get(pk=run_id), until=[Run.Status.RUNNING])
    assert client.post(f"{url}{run_id}/cancel").status_code == 200
    assert wait_for_run(Run.objects.get(pk=run_id)).status == Run.Status.CANCELLED

    stranger = Client()
    stranger.force_login(make_user())
    assert stranger.get(url).status_code == 404
    assert Client().get(url).status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(workspace.user)
    assert strict.post(url, "{}", content_type="application/json").status_code == 403


def test_workspace_pages(engine, make_user):
    user = make_user()
    client = Client()
    client.force_login(user)
    made = client.post("/workspaces/", {"spoon": "web", "branch": "feature/x", "repo_url": ""})
    assert made.status_code == 302
    workspace = user.workspaces.get()
    page = client.get(f"/workspaces/{workspace.pk}/").content.decode()
    assert "~/Code/web/feature/x" in page and f'data-workspace="{workspace.pk}"' in page
    bad = client.post("/workspaces/", {"spoon": "..", "branch": "main"})
    assert bad.status_code == 400 and "Spoon name" in bad.content.decode()
    client.post(f"/workspaces/{workspace.pk}/delete")
    box = lifecycle.box_for(user)
    assert commands.run(box, ["test", "-d", "Code/web/feature/x"]).ok, "the folder is kept"
    other = Client()
    other.force_login(make_user())
    assert other.get(f"/workspaces/{workspace.pk}/").status_code == 404


@pytest.mark.slow
@pytest.mark.browser
def test_a_command_started_on_the_workspace_page_streams_in(spoon_server, page, new_user_logged_in):

    username = new_user_logged_in(page, spoon_server, "/workspaces/")
    page.fill("#spoon", "demo")
    page.fill("#branch", "main")
    page.click("text=Make workspace")
    page.wait_for_url("**/workspaces/*/", timeout=60_000)
    path, wait = gate()  # the run waits there until the page has shown it running
    page.fill("#command", f"sh -c 'echo first; {wait}; echo second-$((20+22))'")
    page.click("[data-run-form] button[type=submit]")
    page.wait_for_selector("[data-run-output]:has-text('first')", timeout=30_000)
    assert "second" not in page.locator("[data-run-output]").inner_text(), (
        "streams in, not at the end"
    )
    # The status shows while it runs, in the title and in the list; the
    # title's duration goes on.
    title = page.locator("[data-run-title]")
    assert title.get_attribute("data-status") == "running"
    shown = title.inner_text()
    page.wait_for_function(
        """shown => {
            const title = document.querySelector('[data-run-title]');
            return title.textContent !== shown && title.dataset.status === 'running';
        }""",
        arg=shown,
        timeout=30_000,
    )
    page.wait_for_selector("[data-run-list] [data-run-status=running]", timeout=30_000)
    open_gate(SimpleNamespace(container_name=f"spoon-box-{username}"), path)
    page.wait_for_selector("[data-run-output]:has-text('second-42')", timeout=30_000)
    page.wait_for_selector("[data-run-title][data-status=succeeded]")
    listed = page.locator("[data-run-list] [data-run-status=succeeded]").inner_text()
    assert "(exit 0)" in listed and re.search(r"· \d+\.\d s$", listed), listed

    page.click("[data-full-terminal]")  # the workspace's terminal in a page of its own
    page.wait_for_url("**/terminal/**")
    wait_connected(page)
    wait_for_screen(page, "$ ")
