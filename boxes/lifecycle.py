"""A user's box: bring it up (ensure), stop it, recreate it on a new image."""

import logging
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from boxes import docker_engine, egress, images, labels, leases, signals
from boxes.models import Box
from boxes.naming import linux_name, numbered

logger = logging.getLogger(__name__)

# What the entrypoint needs, and nothing else: CHOWN to give an empty home
# to the user, DAC_OVERRIDE and FOWNER to populate and fix a home another uid
# owns. Box users are never root, so these only ever serve the entrypoint.
BOX_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FOWNER"]
# With SPOON_BOX_SUDO, root in the box gets the engine's usual default set.
SUDO_CAPABILITIES = BOX_CAPABILITIES + [
    "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE",
    "NET_RAW", "SYS_CHROOT", "MKNOD", "AUDIT_WRITE", "SETFCAP",
]  # fmt: skip
READY_FILE = "/run/spoon/ready"
# A claim outlives any one engine operation; a holder that died lets it lapse.
CLAIM_SECONDS = 120


class BoxError(Exception):
    """The box could not be brought up; the message says why."""


def box_for(user) -> Box:
    """The user's Box row, created with a fresh, unique Linux name if needed."""
    box = Box.objects.filter(user=user).first()
    if box is not None:
        return box
    base = linux_name(user.get_username())
    for number in range(1, 1000):
        name = base if number == 1 else numbered(base, number)
        if Box.objects.filter(username=name).exists() or _name_left_behind(name):
            continue
        try:
            with transaction.atomic():
                return Box.objects.create(user=user, username=name)
        except IntegrityError:
            box = Box.objects.filter(user=user).first()
            if box is not None:  # another request made it meanwhile
                return box
    raise BoxError(f"No free Linux user name near {base!r}.")


def _name_left_behind(name: str) -> bool:
    """A home or container by this name outlives its row (a deleted user, or
    another installation on this engine): giving the name out again would
    hand someone else's files to a new user."""
    probe = Box(username=name)
    if settings.SPOON_HOMES_DIR and Path(settings.SPOON_HOMES_DIR, name).exists():
        return True
    return docker_engine.volume_exists(probe.volume_name) or (
        docker_engine.container_state(probe.container_name) is not None
    )


@contextmanager
def claimed(box: Box, wait: bool = True):
    """Claim the box for one slow change to its container.

    The row lock is held only to take the claim, never across Docker calls:
    on SQLite that lock is the whole database's. Others wait for the claim
    (wait=True) or are told None (wait=False). A waiter gives up only on a
    holder that kept one claim past CLAIM_SECONDS; a queue of holders that
    each finish is progress, however long it is.
    """
    token = uuid.uuid4().hex
    waiting_on, deadline = None, 0.0
    while True:
        holder = _claim_holder(box)
        if holder is None or not wait:
            if _take_claim(box, token):
                break
            if not wait:
                yield None
                return
        elif holder != waiting_on:
            waiting_on, deadline = holder, time.monotonic() + CLAIM_SECONDS
        elif time.monotonic() > deadline:
            raise BoxError(f"{box.container_name} stayed busy for {CLAIM_SECONDS} s.")
        # Waiters poll with a plain read: taking the write lock 20 times a
        # second each, they would starve the holder's release on SQLite.
        time.sleep(0.05)
    box = Box.objects.get(pk=box.pk)
    try:
        yield box
    finally:
        # Only our own claim: one that lapsed may have passed to someone else.
        Box.objects.filter(pk=box.pk, claim_token=token).update(claimed_until=None, claim_token="")
        box.claimed_until, box.claim_token = None, ""


def _claim_holder(box: Box) -> str | None:
    """The token of the claim on the box, or None when it is free or lapsed."""
    row = Box.objects.filter(pk=box.pk).values_list("claimed_until", "claim_token").first()
    if row is None or row[0] is None or row[0] < timezone.now():
        return None
    return row[1]


def _take_claim(box: Box, token: str) -> bool:
    with transaction.atomic():
        box = Box.objects.select_for_update().get(pk=box.pk)
        now = timezone.now()
        if box.is_claimed(now):
            return False
        box.claimed_until = now + timedelta(seconds=CLAIM_SECONDS)
        box.claim_token = token
        box.save(update_fields=["claimed_until", "claim_token"])
        return True


def _runs_as_wanted(box: Box, found: docker_engine.ContainerState | None, image_id: str) -> bool:
    return (
        box.state == Box.State.RUNNING
        and found is not None
        and found.running
        and (found.image_id == image_id or box.update_pending)
    )


def ensure_box(user, image: str = "", preferred_image: str = "", lease=None) -> Box:
    """Make the user's box run, on the resolved image; idempotent and safe to
    call from many threads and processes at once.

    With `image`, the box must run on it: a box that something else holds on
    another image is refused (BoxError). With `preferred_image` (or none, and
    so the user's or the job image), a box held on another image stays on it,
    marked update pending, and moves at its next idle stop.

    Whatever goes on to use the box calls this through boxes.use.using_box,
    which takes its lease first and passes it in: a reaper then cannot stop
    the box in between, and the caller's own lease does not count as someone
    else using the box when it has to be recreated on a new image. (Operators'
    `ensurebox` and the admin's restart only bring a box up, and call it as is.)
    """
    box = box_for(user)
    ref, image_id = images.resolve_image(explicit=image, preferred=preferred_image, box=box)
    found = docker_engine.container_state(box.container_name)
    _refuse_foreign(box, found)
    wrong_image = bool(image) and found is not None and found.image_id != image_id
    if not box.is_claimed() and _runs_as_wanted(box, found, image_id) and not wrong_image:
        leases.touch(box)
        return box
    with claimed(box) as box:
        # Whoever held the claim before may have done it all already.
        found = docker_engine.container_state(box.container_name)
        wrong_image = bool(image) and found is not None and found.image_id != image_id
        if not _runs_as_wanted(box, found, image_id) or wrong_image:
            try:
                _converge(box, found, ref, image_id, lease, explicit=bool(image))
            except (docker_engine.EngineError, BoxError) as exc:
                Box.objects.filter(pk=box.pk).update(last_error=str(exc))
                raise
    leases.touch(box, force=True)
    return box


def _refuse_foreign(box: Box, found: docker_engine.ContainerState | None) -> None:
    owner = found.labels.get(labels.INSTANCE) if found else settings.SPOON_INSTANCE
    if owner != settings.SPOON_INSTANCE:
        raise BoxError(
            f"A container named {box.container_name} belongs to another Spoon installation "
            f"({owner or 'none'}) on this Docker Engine; Spoon leaves it alone."
        )


def _converge(box: Box, found, ref: str, image_id: str, lease=None, explicit=False) -> None:
    """While holding the claim: make the engine match, then record it."""
    if found is not None and found.image_id != image_id:
        others = box.leases.live().exclude(pk=lease.pk if lease else None)
        if others.exists() and explicit:
            raise BoxError(
                f"{box.container_name} runs another image and is in use; "
                f"{ref} can replace it once it is idle."
            )
        if others.exists():
            box.update_pending = True
        else:
            logger.info("recreating %s on %s", box.container_name, ref)
            _say_why(box, f"recreated to move to the image {ref}")
            docker_engine.remove_container(box.container_name)
            found = None
    started = False
    if found is None:
        _create_container(box, ref, image_id)
        started = True
    elif not found.running:
        docker_engine.start_container(box.container_name)
        started = True
    _wait_until_ready(box)
    if found is not None:
        box.container_id = found.id
    if found is None or found.image_id == image_id:
        box.running_image, box.running_image_id, box.update_pending = ref, image_id, False
    box.state = Box.State.RUNNING
    if started:
        box.started_at = timezone.now()
        box.stop_reason = ""
    box.last_error = ""
    box.save()
    if started:
        signals.box_started.send(sender=Box, box=box)


def _home_mount(box: Box) -> dict:
    if settings.SPOON_HOMES_DIR:
        # Only an empty folder is made from here; the entrypoint, inside the
        # box, gives it to the user, so nothing in a home is written from the host.
        Path(settings.SPOON_HOMES_DIR, box.username).mkdir(mode=0o700, parents=True, exist_ok=True)
        source = str(Path(settings.SPOON_HOST_HOMES_DIR, box.username))
        return {"type": "bind", "source": source, "target": box.home}
    docker_engine.create_volume(box.volume_name, labels=labels.of_home(box.username))
    return {"type": "volume", "source": box.volume_name, "target": box.home}


def _network(image_id: str) -> str:
    """none, the engine's bridge, or (the default) Spoon's own network where
    boxes reach the outside but not each other, nor this host (egress)."""
    network = settings.SPOON_BOX_NETWORK
    if network == "host" or network.startswith("container:"):
        raise BoxError(f"SPOON_BOX_NETWORK={network} would share a network stack; refused.")
    if network not in ("none", "bridge"):
        docker_engine.ensure_isolated_network(network, labels=labels.of_network())
    try:
        egress.ensure(network, image_id)
    except egress.EgressError as exc:
        raise BoxError(str(exc)) from exc
    return network


def cpu_limit() -> float:
    """SPOON_BOX_CPUS, else 2 or one less than the engine's host has, at least half a CPU."""
    if settings.SPOON_BOX_CPUS:
        return settings.SPOON_BOX_CPUS
    return max(0.5, min(2.0, docker_engine.cpu_count() - 1))


def _create_container(box: Box, ref: str, image_id: str) -> None:
    network = _network(image_id)
    mounts = [_home_mount(box)]
    if settings.SPOON_BOX_DOCKER_SOCKET:
        socket_path = settings.SPOON_BOX_DOCKER_SOCKET
        mounts.append({"type": "bind", "source": socket_path, "target": "/var/run/docker.sock"})
    sudo = settings.SPOON_BOX_SUDO
    container_id = docker_engine.create_container(
        image_id,
        name=box.container_name,
        labels=labels.of_box(box.username, box.user_id, ref, image_id),
        environment={
            "SPOON_USER": box.username,
            "SPOON_UID": str(settings.SPOON_BOX_UID),
            "SPOON_GID": str(settings.SPOON_BOX_UID),
            "SPOON_HOME": box.home,
            "SPOON_SUDO": "true" if sudo else "false",
        },
        mounts=mounts,
        hostname="spoon",
        mem_limit=settings.SPOON_BOX_MEMORY,
        memswap_limit=settings.SPOON_BOX_MEMORY,  # the same: no swap beyond it
        nano_cpus=int(cpu_limit() * 1e9),
        pids_limit=settings.SPOON_BOX_PIDS,
        network_mode=network,
        runtime=settings.SPOON_BOX_RUNTIME or None,
        privileged=False,
        cap_drop=["ALL"],
        cap_add=SUDO_CAPABILITIES if sudo else BOX_CAPABILITIES,
        # sudo is a setuid program: it only works where new privileges may be gained.
        security_opt=[] if sudo else ["no-new-privileges"],
        # A fresh /run on every start: no stale ready marker or exec records.
        tmpfs={"/run": "rw,nosuid,nodev,mode=755"},
    )
    box.container_id = container_id
    try:
        docker_engine.start_container(container_id)
    except docker_engine.EngineError:
        docker_engine.remove_container(container_id)
        raise


def _wait_until_ready(box: Box) -> None:
    """Wait, inside the box, for the entrypoint to have made the user."""
    timeout = settings.SPOON_BOX_START_TIMEOUT
    wait = (
        f"i=0; until [ -e {READY_FILE} ]; do "
        f"sleep 0.02; i=$((i+1)); [ $i -lt {timeout * 50} ] || exit 1; done"
    )
    try:
        code, _ = docker_engine.exec_run(
            box.container_name, ["sh", "-c", wait], user=f"{settings.SPOON_BOX_UID}"
        )
    except docker_engine.EngineError:
        code = None
    if code != 0:
        state = docker_engine.container_state(box.container_name)
        logs = docker_engine.container_logs(box.container_name, tail=20).strip()
        why = "exited" if state is None or not state.running else f"was not ready in {timeout} s"
        raise BoxError(f"The box {box.container_name} {why} while starting: {logs or 'no output'}")


# Why a box stops, as the things it cuts off say it ("its box was ...").
BY_AN_OPERATOR = "stopped by an operator"
RESTARTED = "restarted by an operator"
RECREATED = "recreated by an operator"


def stop_box(box: Box, remove: bool = True, reason: str = BY_AN_OPERATOR) -> None:
    """Stop the container (and remove it: the home stays in its volume)."""
    with claimed(box) as box:
        _stop(box, remove, reason)


def _stop(box: Box, remove: bool, reason: str) -> None:
    _say_why(box, reason)
    try:
        docker_engine.stop_container(box.container_name, timeout=10)
        if remove:
            docker_engine.remove_container(box.container_name)
    except docker_engine.NotFound:
        pass
    _record_stopped(box, remove)


def _say_why(box: Box, reason: str) -> None:
    Box.objects.filter(pk=box.pk).update(stop_reason=reason)
    box.stop_reason = reason


def _record_stopped(box: Box, removed: bool) -> None:
    box.state = Box.State.STOPPED
    box.stopped_at = timezone.now()
    if removed:
        box.container_id = ""
        box.update_pending = False
    box.save()


# Not stopped by Spoon: a `docker stop`, or the engine restarted or crashed.
OUTSIDE_SPOON = "stopped or removed outside Spoon"


def stop_reason(box: Box) -> str:
    """Why the box last stopped, as recorded before it stopped."""
    recorded = Box.objects.filter(pk=box.pk).values_list("stop_reason", flat=True).first()
    return recorded or OUTSIDE_SPOON


def stopped_because(box: Box, wait: float = 1.0) -> str | None:
    """Why the box's container stopped, or None while it runs. A container
    being removed still says running for a moment after its processes die,
    so a running one is asked again for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        found = docker_engine.container_state(box.container_name)
        if found is None or not found.running or found.id != (box.container_id or found.id):
            return stop_reason(box)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)


def idle_reason(idle_seconds: int) -> str:
    minutes = round(idle_seconds / 60)
    if idle_seconds < 60:
        return f"stopped after {idle_seconds} idle seconds"
    return f"stopped after {minutes} idle minute{'' if minutes == 1 else 's'}"


def stop_box_if_idle(box: Box, idle_seconds: int | None = None) -> bool:
    """Stop the box unless something uses it or changes it meanwhile."""
    if idle_seconds is None:
        idle_seconds = settings.SPOON_BOX_IDLE_SECONDS
    with claimed(box, wait=False) as box:
        if box is None or not box.is_idle(idle_seconds=idle_seconds):
            return False
        _say_why(box, idle_reason(idle_seconds))
        try:
            docker_engine.stop_container(box.container_name, timeout=10)
        except docker_engine.NotFound:
            return False  # another reaper got there first
        docker_engine.remove_container(box.container_name)
        _record_stopped(box, removed=True)
        return True


def recreate_box(box: Box) -> Box:
    """Remove the container and bring the box up again on the resolved image."""
    with claimed(box) as box:
        _stop(box, remove=True, reason=RECREATED)
    return ensure_box(box.user)


def restart_box(box: Box) -> Box:
    with claimed(box) as box:
        _stop(box, remove=False, reason=RESTARTED)
    return ensure_box(box.user)
