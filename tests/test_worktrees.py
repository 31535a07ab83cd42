"""Parallel write runs in git worktrees; explore runs share the checkout."""

import pytest

from boxes import lifecycle, reaper
from tests.waits import gate, open_gate
from workspaces import folders, runs
from workspaces.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def repo_workspace(engine, make_user, settings, sh):
    settings.SPOON_WORKSPACE_URL_SCHEMES = ["https", "ssh", "file"]
    user = make_user()
    box = lifecycle.ensure_box(user)
    sh(
        box,
        "git init -q -b main ~/origin && cd ~/origin && git config user.email t@t && "
        "git config user.name t && echo base > base.txt && git add . && git commit -qm base",
    )
    workspace = folders.create_workspace(user, "proj", "main", repo_url=f"file://{box.home}/origin")
    return workspace, box


@pytest.mark.both_databases
def test_two_write_runs_work_in_separate_trees(repo_workspace, sh, wait_for_run):
    workspace, box = repo_workspace
    path, wait = gate()  # both write, then wait there: they surely overlap
    first = runs.start_run(
        workspace, ["sh", "-c", f"echo first > mine.txt; {wait}; cat mine.txt; pwd"]
    )
    second = runs.start_run(
        workspace, ["sh", "-c", f"echo second > mine.txt; {wait}; cat mine.txt; pwd; ls"]
    )
    assert first.worktree == "" and second.worktree == f".worktrees/run-{second.pk}"
    for run in (first, second):
        wait_for_run(run, until=[Run.Status.RUNNING])
    open_gate(box, path)
    first, second = wait_for_run(first), wait_for_run(second)
    assert first.status == second.status == Run.Status.SUCCEEDED, (first.error, second.error)
    checkout = f"{box.home}/Code/proj/main"
    assert first.output.split() == ["first", checkout]
    lines = second.output.split()
    assert lines[:2] == ["second", f"{checkout}/.worktrees/run-{second.pk}"]
    assert "base.txt" in lines, "a worktree of the same repository"
    assert sh(box, "cat ~/Code/proj/main/mine.txt") == "first", "neither saw the other's file"
    assert ".worktrees/" in sh(box, "cat ~/Code/proj/main/.gitignore")
    assert sh(box, "ls -A ~/Code/proj/main/.worktrees") == "", "removed when the run ended"
    assert sh(box, "cd ~/Code/proj/main && git worktree list | wc -l") == "1"


def test_explore_runs_share_the_checkout(repo_workspace, wait_for_run):
    workspace, box = repo_workspace
    writer = runs.start_run(workspace, ["sleep", "2"])
    reader = wait_for_run(runs.start_run(workspace, ["pwd"], explore=True))
    assert reader.worktree == "" and reader.output.strip() == f"{box.home}/Code/proj/main"
    wait_for_run(writer)


def test_a_folder_that_is_not_a_checkout_has_one_writer(engine, make_user, wait_for_run):
    workspace = folders.create_workspace(make_user(), "plain", "main")
    first = runs.start_run(workspace, ["sleep", "2"])
    with pytest.raises(runs.Busy, match="not a git checkout"):
        runs.start_run(workspace, ["true"])
    wait_for_run(first)


def test_a_folder_made_a_checkout_by_hand_gives_a_second_writer_a_worktree(
    engine, make_user, sh, wait_for_run
):
    workspace = folders.create_workspace(make_user(), "plain", "main")
    box = lifecycle.box_for(workspace.user)
    sh(
        box,
        "cd ~/Code/plain/main && git init -q && git config user.email t@t && "
        "git config user.name t && echo x > a && git add a && git commit -qm one",
    )
    first = runs.start_run(workspace, ["sleep", "3"])
    second = wait_for_run(runs.start_run(workspace, ["sh", "-c", "pwd; cat a"]))
    assert second.status == Run.Status.SUCCEEDED, second.error
    assert second.output.split() == [f"{box.home}/Code/plain/main/{second.worktree}", "x"]
    wait_for_run(first)


def test_stale_worktrees_are_cleaned_by_reapboxes(repo_workspace, sh):
    workspace, box = repo_workspace
    stale = Run.objects.create(
        workspace=workspace, argv=["true"], token="s" * 32, status=Run.Status.FAILED,
        worktree=".worktrees/run-stale",
    )  # fmt: skip
    sh(
        box,
        "cd ~/Code/proj/main && git worktree add -q --detach .worktrees/run-stale",
    )
    report = reaper.reap()
    assert f"removed stale worktree .worktrees/run-stale of {box.container_name}" in report.lines
    assert sh(box, "ls -A ~/Code/proj/main/.worktrees") == ""
    stale.refresh_from_db()
    assert stale.worktree_removed
