"""reapboxes: idle boxes stop, leases hold them, the engine and the rows agree."""

import io
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from boxes import docker_engine, leases, lifecycle, reaper
from boxes.models import Box, Lease
from tests import reliability
from tests.support import REPO, spoon_process_env
from tests.waits import read_until

pytestmark = pytest.mark.django_db(transaction=True)


def make_idle(box, minutes=60):
    Box.objects.filter(pk=box.pk).update(
        last_activity_at=timezone.now() - timedelta(minutes=minutes)
    )


def test_idle_box_is_stopped_and_its_container_removed_home_kept(engine, make_user):
    box = lifecycle.ensure_box(make_user())
    make_idle(box)
    out = io.StringIO()
    call_command("reapboxes", stdout=out)
    lines = out.getvalue().splitlines()
    assert f"stopped {box.container_name}" in lines[0]
    assert lines[-1].startswith("reapboxes: 1 stopped")
    assert docker_engine.container_state(box.container_name) is None
    assert docker_engine.volume_exists(box.volume_name)
    assert Box.objects.get(pk=box.pk).state == Box.State.STOPPED


def test_recently_active_box_is_kept(engine, make_user):
    box = lifecycle.ensure_box(make_user())
    report = reaper.reap()
    assert report.stopped == 0 and report.kept >= 1
    assert docker_engine.container_state(box.container_name).running


@pytest.mark.both_databases
def test_live_lease_holds_the_box_until_it_expires(engine, make_user):
    box = lifecycle.ensure_box(make_user())
    lease = leases.acquire(box, Lease.Kind.RUN, "a long build")
    make_idle(box)
    assert reaper.reap().stopped == 0
    assert docker_engine.container_state(box.container_name).running

    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert reaper.reap().stopped == 1


@pytest.mark.both_databases
def test_activity_writes_are_throttled(engine, make_user, settings):
    box = lifecycle.box_for(make_user())
    settings.SPOON_ACTIVITY_WRITE_SECONDS = 3600
    leases.touch(box, force=True)
    written = Box.objects.get(pk=box.pk).last_activity_at
    leases.touch(box)
    assert Box.objects.get(pk=box.pk).last_activity_at == written


def test_dry_run_changes_nothing(engine, make_user):
    box = lifecycle.ensure_box(make_user())
    make_idle(box)
    out = io.StringIO()
    call_command("reapboxes", "--dry-run", stdout=out)
    assert f"would stop {box.container_name}" in out.getvalue()
    assert docker_engine.container_state(box.container_name).running


def test_idle_seconds_option(engine, make_user):
    box = lifecycle.ensure_box(make_user())
    make_idle(box, minutes=2)
    assert reaper.reap().stopped == 0
    out = io.StringIO()
    call_command("reapboxes", "--idle-seconds", "60", stdout=out)
    assert f"stopped {box.container_name}" in out.getvalue()


def test_orphan_container_is_removed_and_its_volume_kept(engine, settings):
    user = f"orphan-{uuid.uuid4().hex[:8]}"
    name, volume = f"spoon-box-{user}", f"spoon-home-{user}"
    docker_engine.create_volume(volume, labels={"spoon.instance": settings.SPOON_INSTANCE})
    docker_engine.run_container(
        settings.SPOON_JOB_IMAGE,
        name=name,
        labels={
            "spoon.box": "1",
            "spoon.instance": settings.SPOON_INSTANCE,
            "spoon.user": user,
        },
        environment={"SPOON_USER": user},
        volumes={volume: {"bind": f"/home/{user}", "mode": "rw"}},
    )
    try:
        report = reaper.reap()
        assert f"removed orphan {name} (no user; volume {volume} kept)" in report.lines
        assert docker_engine.container_state(name) is None
        assert docker_engine.volume_exists(volume)
    finally:
        docker_engine.remove_container(name)
        docker_engine.remove_volume(volume)


def test_other_installations_boxes_are_never_touched(engine, settings):
    name = f"spoon-box-elsewhere-{uuid.uuid4().hex[:8]}"
    docker_engine.run_container(
        settings.SPOON_JOB_IMAGE,
        name=name,
        labels={
            "spoon.box": "1",
            "spoon.instance": "another-install",
            "spoon.test": settings.SPOON_INSTANCE,
        },
        environment={"SPOON_USER": "elsewhere"},
    )
    try:
        reaper.reap(idle_seconds=0)
        assert docker_engine.container_state(name).running
    finally:
        docker_engine.remove_container(name)


def test_vanished_container_is_reconciled(engine, make_user):
    box = lifecycle.ensure_box(make_user())
    docker_engine.remove_container(box.container_name)
    report = reaper.reap()
    assert f"marked {box.container_name} stopped (its container is gone)" in report.lines
    assert Box.objects.get(pk=box.pk).state == Box.State.STOPPED
    assert lifecycle.ensure_box(box.user).state == Box.State.RUNNING


def test_one_list_call_per_pass(engine, make_user):
    for _ in range(3):
        lifecycle.ensure_box(make_user())
    report = reaper.reap()
    assert report.list_calls == 1
    assert report.api_calls == 1, "nothing to do costs nothing more"


@pytest.mark.both_databases
def test_two_reapers_at_once_do_no_harm(engine, make_user, run_in_threads):
    boxes = [lifecycle.ensure_box(make_user()) for _ in range(3)]
    for box in boxes:
        make_idle(box)
    reports, errors = run_in_threads(reaper.reap, reaper.reap)
    assert not errors
    assert sum(r.stopped for r in reports) == 3
    for box in boxes:
        assert docker_engine.container_state(box.container_name) is None


def test_reap_with_the_engine_down_is_a_readable_error(settings):
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="does not answer"):
        call_command("reapboxes")


@pytest.mark.both_databases
def test_a_lease_then_ensure_racing_a_reap_always_gets_a_running_box(
    engine, make_user, run_in_threads
):
    for _ in range(3):
        user = make_user()
        make_idle(lifecycle.ensure_box(user))

        def use_the_box(user=user):
            lease = leases.acquire(lifecycle.box_for(user), Lease.Kind.RUN, "racing run")
            return lifecycle.ensure_box(user, lease=lease)

        results, errors = run_in_threads(reaper.reap, use_the_box)
        assert not errors
        (box,) = [r for r in results if isinstance(r, Box)]
        assert docker_engine.container_state(box.container_name).running, (
            "what ensure handed out under a lease was not stopped by the reaper"
        )


@pytest.mark.both_databases
def test_the_long_running_reaper_stops_a_box_that_goes_idle_while_it_runs(engine, make_user):
    box = lifecycle.ensure_box(make_user())
    reaper_process = subprocess.Popen(
        [sys.executable, "manage.py", "reapboxes", "--every", "0.5"],
        cwd=REPO,
        env=spoon_process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        summary = read_until(reaper_process, lambda line: line.startswith("reapboxes:"))[-1]
        assert "kept" in summary, "a pass's summary comes as it is written"
        make_idle(box)
        read_until(reaper_process, lambda line: line.startswith(f"stopped {box.container_name}"))
        assert docker_engine.container_state(box.container_name) is None
        assert reaper_process.poll() is None, "it goes on after a pass"
    finally:
        reaper_process.terminate()
        reaper_process.wait(timeout=10)


def test_the_long_running_reaper_outlives_a_down_engine(settings):
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    lines = []
    reaper.reap_every(0.01, lines.append, passes=3)
    assert len(lines) == 3
    assert all(line.startswith("reapboxes: the pass failed:") for line in lines)
    assert "does not answer" in lines[0]


@pytest.mark.parametrize(
    "arguments", [["--every", "0"], ["--every", "-5"], ["--every", "5", "--dry-run"]]
)
def test_every_takes_positive_seconds_without_dry_run(arguments):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="positive number of seconds"):
        call_command("reapboxes", *arguments)


@pytest.mark.both_databases
def test_a_reaper_killed_halfway_leaves_nothing_the_next_one_cannot_finish(engine, make_user):
    """SIGKILLed while it stops boxes: once its claims lapse, the next reaper
    stops what is left, and the rows and the engine agree again."""
    boxes = [lifecycle.ensure_box(make_user()) for _ in range(3)]
    for box in boxes:
        make_idle(box)
    reaping = subprocess.Popen(
        [sys.executable, "manage.py", "reapboxes"],
        cwd=REPO,
        env=spoon_process_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    claimed = Box.objects.filter(pk__in=[b.pk for b in boxes]).exclude(claim_token="")
    deadline = time.monotonic() + 60
    while not claimed.exists():  # it has begun stopping one
        assert time.monotonic() < deadline and reaping.poll() is None, "it never began"
        time.sleep(0.01)  # a claim lasts as long as a box's stop: look often
    reaping.kill()
    reaping.wait(timeout=10)
    # Its claims last lifecycle.CLAIM_SECONDS: as if they had passed.
    Box.objects.filter(pk__in=[b.pk for b in boxes]).exclude(claim_token="").update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    reaper.reap()
    for box in boxes:
        box.refresh_from_db()
        assert box.state == Box.State.STOPPED and not box.claim_token, box
        assert docker_engine.container_state(box.container_name) is None
        assert docker_engine.volume_exists(box.volume_name), "the home is kept"
    reliability.survived(
        "a reaper killed (SIGKILL) while it stops boxes",
        "nothing: a box it was stopping stays stopped, or starts again on use",
        "once its claims lapse (120 s), the next pass stops what is left; rows and engine agree",
    )
