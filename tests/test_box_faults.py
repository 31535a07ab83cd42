"""Faults of the real stack inside a box: what the user is told, what is
recorded, and that the box is usable again afterwards."""

import pytest

from tests import reliability
from workspaces import folders, runs

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_run_killed_for_the_memory_limit_says_so_and_the_box_goes_on(
    engine, make_user, settings, wait_for_run
):
    settings.SPOON_BOX_MEMORY = "200m"
    workspace = folders.create_workspace(make_user(), "proj", "main")
    # (It never gets to sleep: the kernel kills it first.)
    hog = ["python3", "-c", "import time; b = b'x' * (400 * 1024 * 1024); time.sleep(5)"]
    run = wait_for_run(runs.start_run(workspace, hog), timeout=120)
    assert run.status == run.Status.FAILED
    assert run.exit_code == 137
    assert run.error == "out of memory (limit 200m): the kernel killed it"
    after = wait_for_run(runs.start_run(workspace, ["echo", "still-here"]))
    assert after.status == after.Status.SUCCEEDED and after.recorded_output == "still-here\n"
    killed = wait_for_run(runs.start_run(workspace, ["sh", "-c", "kill -9 $$"]))
    assert killed.error == "exited with 137", "a kill that is not the memory limit's"
    reliability.survived(
        "a run's process killed for the box's memory limit",
        'the run fails with "out of memory (limit 4g): the kernel killed it"; the next run works',
        "the run's status, exit code 137 and that sentence",
    )
