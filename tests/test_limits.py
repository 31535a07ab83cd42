"""What one user may keep in Spoon's database, and that the limits hold when
requests come at once; folders in the overlay are matched exactly."""

import json

import pytest
from django.test import Client

from dotfiles import files, materialize
from dotfiles.models import DotfilesRun, OverlayFile
from tests import reliability
from workspaces import runs
from workspaces.models import Run, Workspace

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.both_databases]


@pytest.fixture
def user(make_user):
    return make_user()


def paths(user) -> list[str]:
    return sorted(OverlayFile.objects.filter(user=user).values_list("path", flat=True))


def test_folders_are_matched_exactly_not_by_case(user):
    for path in ("many/a", "many/b", "MANY/c", "manyx/d"):
        files.save_file(user, path, b"x", False)
    assert files.delete_path(user, "MANY") == 1
    assert paths(user) == ["many/a", "many/b", "manyx/d"]
    assert files.rename_path(user, "many", "Many") == 2
    assert paths(user) == ["Many/a", "Many/b", "manyx/d"]
    files.save_file(user, "many", b"a file beside the folder Many", False)
    assert paths(user) == ["Many/a", "Many/b", "many", "manyx/d"]


def test_the_number_of_overlay_files_is_capped(user, settings):
    settings.SPOON_DOTFILES_MAX_FILES = 3
    client = Client()
    client.force_login(user)
    for n in range(3):
        files.save_file(user, f"f{n}", b"x", False)
    answer = client.post("/api/dotfiles/files/", json.dumps({"path": "f3", "content": "x"}),
                         content_type="application/json")  # fmt: skip
    assert answer.status_code == 413
    assert answer.json()["error"] == "You have 3 files already, as many as you may keep."
    files.save_file(user, "f0", b"changed", False)  # changing one is not another
    assert paths(user) == ["f0", "f1", "f2"]
    reliability.limit(
        "overlay files per user", "`SPOON_DOTFILES_MAX_FILES` (1000)",
        "413: \"You have 1000 files already, as many as you may keep.\"",
    )  # fmt: skip


def test_the_byte_limit_holds_under_forty_saves_at_once(user, settings, run_in_threads):
    settings.SPOON_DOTFILES_MAX_TOTAL_BYTES = 20 * 1024 * 1024
    mebibyte = b"m" * (1024 * 1024)

    def save(n):
        return lambda: files.save_file(user, f"big/{n}", mebibyte, False)

    saved, refused = run_in_threads(*(save(n) for n in range(40)))
    assert files.total_bytes(user) <= settings.SPOON_DOTFILES_MAX_TOTAL_BYTES
    assert len(saved) == 20 and len(refused) == 20
    assert all(isinstance(e, files.TooLarge) for e in refused), refused
    reliability.limit(
        "overlay bytes per user", "`SPOON_DOTFILES_MAX_TOTAL_BYTES` (20 MiB)",
        "413 naming the file; holds under 40 saves at once",
    )  # fmt: skip


def test_old_finished_runs_are_pruned_but_not_ones_naming_a_worktree(user, settings, caplog):
    settings.SPOON_RUNS_KEPT = 3
    workspace = Workspace.objects.create(user=user, spoon="p", branch="main")
    with_worktree = Run.objects.create(
        workspace=workspace,
        argv=["true"],
        status=Run.Status.SUCCEEDED,
        worktree="/w/run-1",
        token="wt",
    )
    done = [
        Run.objects.create(
            workspace=workspace, argv=["true"], status=Run.Status.SUCCEEDED, token=f"t{n}"
        )
        for n in range(5)
    ]
    running = Run.objects.create(
        workspace=workspace, argv=["true"], status=Run.Status.RUNNING, token="running"
    )
    caplog.set_level("INFO")
    assert runs.prune_history(user) == 2
    left = set(Run.objects.filter(workspace__user=user).values_list("pk", flat=True))
    assert left == {with_worktree.pk, running.pk, *(r.pk for r in done[2:])}
    assert "2 oldest finished runs (SPOON_RUNS_KEPT=3)" in caplog.text
    reliability.limit(
        "finished runs kept per user", "`SPOON_RUNS_KEPT` (500)",
        "the oldest are deleted, with a line in the log",
    )  # fmt: skip


def test_old_dotfiles_runs_are_pruned(user, settings):
    settings.SPOON_DOTFILES_RUNS_KEPT = 2
    made = [
        DotfilesRun.objects.create(user=user, trigger="manual", status=DotfilesRun.Status.FAILED)
        for _ in range(4)
    ]
    materialize.prune_history(user)
    left = set(DotfilesRun.objects.filter(user=user).values_list("pk", flat=True))
    assert left == {made[2].pk, made[3].pk}
    reliability.limit(
        "dotfiles runs kept per user", "`SPOON_DOTFILES_RUNS_KEPT` (50)",
        "the oldest are deleted, with a line in the log",
    )  # fmt: skip
