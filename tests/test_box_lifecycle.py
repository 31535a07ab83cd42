"""One persistent box per user, brought up by ensure_box on the real engine."""

import os
import subprocess
import sys
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from boxes import commands, docker_engine, egress, images, leases, lifecycle
from boxes.models import Box, Lease
from boxes.naming import linux_name, validate_linux_name
from boxes.use import using_box
from tests import workers
from tests.support import REPO, database_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    "django_name, linux",
    [
        ("alice", "alice"),
        ("Alice.Smith@example.com", "alice-smith-example-com"),
        ("Zoë Ünal", "zoe-unal"),
        ("42things", "things"),
        ("root", "root-u"),
        ("---", "user"),
        ("a" * 60, "a" * 32),
    ],
)
def test_linux_names(django_name, linux):
    assert linux_name(django_name) == linux
    validate_linux_name(linux)


def test_names_that_sanitize_alike_stay_distinct_and_never_change(make_user):
    tag = uuid.uuid4().hex[:6]
    first = lifecycle.box_for(make_user(f"Bob.Builder.{tag}"))
    second = lifecycle.box_for(make_user(f"bob-builder-{tag}"))
    assert (first.username, second.username) == (f"bob-builder-{tag}", f"bob-builder-{tag}-2")
    first.username = "someone-else"
    with pytest.raises(ValueError, match="never changes"):
        first.save()
    with pytest.raises(ValidationError):
        validate_linux_name("daemon")


def test_ensure_makes_a_labeled_hardened_box_with_a_home(engine, make_user, settings, sh):
    user = make_user()
    box = lifecycle.ensure_box(user)
    assert box.state == Box.State.RUNNING
    info = docker_engine.inspect_container(box.container_name)
    labels = info["Config"]["Labels"]
    image_id = docker_engine.image_id(settings.SPOON_JOB_IMAGE)
    assert labels["spoon.box"] == "1"
    assert labels["spoon.instance"] == settings.SPOON_INSTANCE
    assert labels["spoon.user"] == box.username
    assert labels["spoon.user_id"] == str(user.pk)
    assert labels["spoon.image"] == f"{settings.SPOON_JOB_IMAGE}@{image_id}"

    host = info["HostConfig"]
    assert host["Memory"] == 4 * 1024**3
    assert host["MemorySwap"] == host["Memory"], "no swap beyond the memory limit"
    host_cpus = docker_engine.cpu_count()
    assert host["NanoCpus"] == max(0.5, min(2, host_cpus - 1)) * 1e9, "the host keeps a core"
    assert host["PidsLimit"] == 512
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["CapDrop"] == ["ALL"]
    assert sorted(host["CapAdd"]) == ["CHOWN", "DAC_OVERRIDE", "FOWNER"]
    assert host["Privileged"] is False
    assert not host["Devices"]
    assert host["NetworkMode"] == "none"
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert mounts[box.home]["Type"] == "volume" and mounts[box.home]["Name"] == box.volume_name
    assert not any("docker.sock" in m["Source"] for m in info["Mounts"])

    # PID 1 is tini, and kept none of the capabilities the entrypoint had.
    pid1 = sh(box, "cat /proc/1/comm; grep -E '^Cap(Inh|Prm|Eff|Amb)' /proc/1/status").split()
    assert pid1 == ["tini", "CapInh:", "0" * 16, "CapPrm:", "0" * 16, "CapEff:", "0" * 16,
                    "CapAmb:", "0" * 16], pid1  # fmt: skip
    assert sh(box, "id -u; whoami; stat -c %U ~; pwd").split() == [
        "1000",
        box.username,
        box.username,
        box.home,
    ]


def test_ensure_is_idempotent_and_starts_a_stopped_box(engine, make_user, sh):
    user = make_user()
    box = lifecycle.ensure_box(user)
    again = lifecycle.ensure_box(user)
    assert again.container_id == box.container_id
    docker_engine.stop_container(box.container_name, timeout=1)
    started = lifecycle.ensure_box(user)
    assert started.container_id == box.container_id
    assert docker_engine.container_state(box.container_name).running
    assert sh(started, "echo up") == "up"


@pytest.mark.both_databases
def test_twenty_concurrent_ensures_from_threads_leave_one_running_box(
    engine, make_user, run_in_threads
):
    user = make_user()
    boxes, errors = run_in_threads(*[lambda: lifecycle.ensure_box(user).container_id] * 20)
    assert not errors
    found = docker_engine.list_containers({"spoon.user": Box.objects.get(user=user).username})
    assert len(found) == 1 and found[0].running
    assert set(boxes) == {found[0].id}


@pytest.mark.slow
@pytest.mark.both_databases
def test_twenty_concurrent_ensures_from_processes_leave_one_running_box(
    engine, make_user, settings
):
    user = make_user()
    env = {
        **os.environ,
        "SPOON_DATA_DIR": str(settings.DATA_DIR),
        "DATABASE_URL": database_url(),
        "SPOON_INSTANCE": settings.SPOON_INSTANCE,
        "SPOON_BOX_NETWORK": "none",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "ensurebox", user.username],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(20)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in processes]
    failed = [out for p, out in zip(processes, outputs, strict=True) if p.returncode != 0]
    assert not failed, "\n".join(failed)
    box = Box.objects.get(user=user)
    assert all(f"{box.container_name}: running" in out for out in outputs)
    found = docker_engine.list_containers({"spoon.user": box.username})
    assert len(found) == 1 and found[0].running


def test_a_missing_image_is_a_clear_error_before_anything_is_made(engine, make_user, settings):
    user = make_user()
    with pytest.raises(docker_engine.ImageMissing, match="manage.py pulljobimage"):
        with override_settings(SPOON_JOB_IMAGE="spoon-test-missing:none"):
            lifecycle.ensure_box(user)
    box = Box.objects.get(user=user)
    assert docker_engine.container_state(box.container_name) is None
    assert not docker_engine.volume_exists(box.volume_name)


def test_image_resolution_order(engine, make_user, settings):
    box = lifecycle.box_for(make_user())
    job = settings.SPOON_JOB_IMAGE
    base = settings.SPOON_BASE_IMAGE
    assert images.resolve_image(box=box)[0] == job
    box.image = base
    assert images.resolve_image(box=box)[0] == base
    box.image = "spoon-test-missing:user"
    assert images.resolve_image(preferred=base, box=box)[0] == base
    assert images.resolve_image(explicit=job, preferred=base, box=box)[0] == job
    with pytest.raises(
        docker_engine.ImageMissing, match=r"spoon-test-missing:user \(set for the user\)"
    ):
        images.resolve_image(box=box)


def test_engine_down_is_a_readable_error(make_user):
    user = make_user()
    with override_settings(DOCKER_HOST="unix:///nonexistent/docker.sock"):
        with pytest.raises(docker_engine.EngineUnreachable, match="does not answer"):
            lifecycle.ensure_box(user)
        with pytest.raises(docker_engine.EngineUnreachable) as down:
            with using_box(user, Lease.Kind.RUN, "a run"):
                raise AssertionError("the block never starts")
    assert "unix:///nonexistent/docker.sock does not answer" in str(down.value)


@pytest.fixture
def upgraded_image(engine, settings, tmp_path):
    """A different job image: the current one plus a marker file."""
    ref = f"spoon-test-upgrade:1{workers.suffix()}"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {settings.SPOON_JOB_IMAGE}\nRUN echo 2 > /etc/spoon-test-version\n"
    )
    labels = {"spoon.test": settings.SPOON_INSTANCE}
    docker_engine.build_image(tmp_path, ref, {}, labels, log=lambda line: None)
    yield ref
    docker_engine.remove_image(ref)


def test_home_survives_reap_reensure_and_image_upgrade(engine, make_user, upgraded_image, sh):
    from boxes import reaper

    user = make_user()
    box = lifecycle.ensure_box(user)
    sh(box, "echo precious > ~/notes.txt")
    report = reaper.reap(idle_seconds=0)
    assert report.stopped == 1
    assert docker_engine.container_state(box.container_name) is None
    assert docker_engine.volume_exists(box.volume_name)

    box = lifecycle.ensure_box(user)
    assert sh(box, "cat ~/notes.txt") == "precious"

    Box.objects.filter(pk=box.pk).update(image=upgraded_image)
    upgraded = lifecycle.ensure_box(user)
    assert upgraded.container_id != box.container_id, "recreated on the new image"
    assert upgraded.running_image == upgraded_image
    assert sh(upgraded, "cat /etc/spoon-test-version ~/notes.txt").split() == ["2", "precious"]


def test_a_held_box_is_marked_update_pending_and_recreated_at_its_idle_stop(
    engine, make_user, upgraded_image
):
    from boxes import reaper

    user = make_user()
    box = lifecycle.ensure_box(user)
    # Work in the box holds it (a terminal alone only keeps it from being
    # recreated under it, not from an idle stop: see test_idle).
    lease = leases.acquire(box, Lease.Kind.RUN, "test run")
    Box.objects.filter(pk=box.pk).update(image=upgraded_image)
    held = lifecycle.ensure_box(user)
    assert held.update_pending
    assert held.container_id == box.container_id, "not recreated under its user"
    assert reaper.reap(idle_seconds=0).stopped == 0

    leases.release(lease)
    assert reaper.reap(idle_seconds=0).stopped == 1
    fresh = lifecycle.ensure_box(user)
    assert not fresh.update_pending
    assert fresh.running_image == upgraded_image


def test_bind_mounted_homes(engine, make_user, settings, tmp_path, sh):
    settings.SPOON_HOMES_DIR = str(tmp_path)
    settings.SPOON_HOST_HOMES_DIR = str(tmp_path)
    box = lifecycle.ensure_box(make_user())
    sh(box, "echo hi > ~/from-the-box")
    on_host = tmp_path / box.username / "from-the-box"
    assert on_host.read_text() == "hi\n"
    assert on_host.stat().st_uid == settings.SPOON_BOX_UID
    mounts = docker_engine.inspect_container(box.container_name)["Mounts"]
    assert [m["Type"] for m in mounts] == ["bind"]


# A wheel made by hand in the box: boxes have no network to fetch one.
MAKE_WHEEL = r"""
import zipfile
with zipfile.ZipFile("/tmp/spoontool-1.0-py3-none-any.whl", "w") as wheel:
    wheel.writestr("spoontool.py", "def hello():\n    return 'mine'\n")
    wheel.writestr("spoontool-1.0.dist-info/METADATA",
                   "Metadata-Version: 2.1\nName: spoontool\nVersion: 1.0\n")
    wheel.writestr("spoontool-1.0.dist-info/WHEEL",
                   "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    wheel.writestr("spoontool-1.0.dist-info/entry_points.txt",
                   "[console_scripts]\nspoontool = spoontool:hello\n")
    wheel.writestr("spoontool-1.0.dist-info/RECORD", "")
"""


def test_installs_go_to_the_home_and_last(engine, make_user, sh):
    user = make_user()
    box = lifecycle.ensure_box(user)
    assert commands.run(box, ["python3", "-c", MAKE_WHEEL]).ok
    installed = commands.run(box, ["python3", "-m", "pip", "install", "--no-index",
                                   "/tmp/spoontool-1.0-py3-none-any.whl"])  # fmt: skip
    assert installed.ok, installed.output
    assert sh(box, "ls ~/.local/bin") == "spoontool"
    # A virtual environment is untouched by the home-install defaults.
    sh(box, "python3 -m venv ~/venv && ~/venv/bin/pip install --no-index -q "
            "/tmp/spoontool-1.0-py3-none-any.whl && ls ~/venv/bin/spoontool")  # fmt: skip
    login = sh(box, "bash -lc 'echo $NPM_CONFIG_PREFIX $CARGO_HOME'")
    assert login == f"{box.home}/.local {box.home}/.cargo"
    lifecycle.recreate_box(box)
    assert (
        commands.run(box, ["python3", "-c", "import spoontool; print(spoontool.hello())"]).output
        == b"mine\n"
    )
    assert commands.run(box, ["sh", "-c", "command -v spoontool"]).output.strip() == (
        f"{box.home}/.local/bin/spoontool".encode()
    )


def test_a_deleted_users_home_is_never_given_to_a_new_user(engine, make_user, sh):
    name = f"reused-{uuid.uuid4().hex[:8]}"
    first = make_user(name)
    box = lifecycle.ensure_box(first)
    sh(box, "echo private > ~/secret")
    docker_engine.remove_container(box.container_name)
    first.delete()
    try:
        assert docker_engine.volume_exists(f"spoon-home-{name}"), "homes outlive users"
        newcomer = lifecycle.ensure_box(make_user(name))
        assert newcomer.username == f"{name}-2"
        assert commands.run(newcomer, ["cat", "secret"]).exit_code != 0
    finally:
        docker_engine.remove_volume(f"spoon-home-{name}")


def test_another_installations_container_is_left_alone(engine, make_user, settings):
    user = make_user()
    box = lifecycle.box_for(user)
    docker_engine.run_container(
        settings.SPOON_JOB_IMAGE,
        name=box.container_name,
        labels={
            "spoon.box": "1",
            "spoon.instance": "someone-else",
            "spoon.test": settings.SPOON_INSTANCE,
        },
        environment={"SPOON_USER": "x"},
    )
    try:
        with pytest.raises(lifecycle.BoxError, match="belongs to another Spoon installation"):
            lifecycle.ensure_box(user)
        assert docker_engine.container_state(box.container_name).running
    finally:
        docker_engine.remove_container(box.container_name)


def test_an_explicit_image_is_not_silently_ignored_while_others_hold_the_box(
    engine, make_user, upgraded_image
):
    user = make_user()
    box = lifecycle.ensure_box(user)
    leases.acquire(box, Lease.Kind.TERMINAL, "someone else's terminal")
    with pytest.raises(lifecycle.BoxError, match="is in use"):
        lifecycle.ensure_box(user, image=upgraded_image)
    Lease.objects.filter(box=box).delete()  # that terminal closed
    with using_box(user, Lease.Kind.RUN, "mine", image=upgraded_image) as moved:
        assert moved.running_image == upgraded_image, "my own lease does not block it"


def test_boxes_get_a_network_where_they_cannot_reach_each_other(engine, make_user, settings):
    network = f"spoon-test-isolated{workers.suffix()}"
    settings.SPOON_BOX_NETWORK = network
    user = make_user()
    try:
        box = lifecycle.ensure_box(user)
        info = docker_engine.inspect_container(box.container_name)
        assert info["HostConfig"]["NetworkMode"] == network
        options = docker_engine.network_options(network)
        assert options["com.docker.network.bridge.enable_icc"] == "false"
        bridge, _ = docker_engine.network_bridge(network)
        written = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
        assert f"-A INPUT -i {bridge} -j {egress.chain_for(bridge)}" in written, "kept off the host"
        settings.SPOON_BOX_NETWORK = "host"
        with pytest.raises(lifecycle.BoxError, match="refused"):
            lifecycle.recreate_box(box)
    finally:
        settings.SPOON_BOX_NETWORK = "none"
        docker_engine.remove_container(lifecycle.box_for(user).container_name)
        egress.remove(network, settings.SPOON_JOB_IMAGE)
        docker_engine.remove_network(network)


def test_no_sudo_by_default_and_sudo_when_configured(engine, make_user, settings):
    box = lifecycle.ensure_box(make_user())
    assert not commands.run(box, ["sudo", "-n", "true"]).ok

    settings.SPOON_BOX_SUDO = True
    sudoer = lifecycle.ensure_box(make_user())
    result = commands.run(sudoer, ["sudo", "-n", "id", "-u"])
    assert result.ok, result.output
    assert result.output.strip() == b"0"


def test_runtime_and_docker_socket_only_when_configured(engine, make_user, settings):
    settings.SPOON_BOX_RUNTIME = "runc"
    settings.SPOON_BOX_DOCKER_SOCKET = "/var/run/docker.sock"
    box = lifecycle.ensure_box(make_user())
    info = docker_engine.inspect_container(box.container_name)
    assert info["HostConfig"]["Runtime"] == "runc"
    mounts = {m["Destination"]: m["Source"] for m in info["Mounts"]}
    assert mounts["/var/run/docker.sock"] == "/var/run/docker.sock"
