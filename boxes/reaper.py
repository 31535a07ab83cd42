"""Stop idle boxes and reconcile the database with the engine, in one pass.

One container-list call per engine tells what exists; the database tells who
owns what and who uses it. Idle boxes are stopped and their containers
removed (homes stay); containers of this installation with no row are
removed (their volumes stay, reported); rows whose container vanished are
marked stopped. Every change is re-checked under the box's row lock, so two
reapers, or a reaper and an ensure, can run at once.
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.db.models import Count, Q
from django.utils import timezone

from boxes import docker_engine, labels, lifecycle, quota, signals
from boxes.models import Box, Lease
from spoon import metrics

# Stops run side by side: a stop is mostly waiting on the engine.
PARALLEL_STOPS = 16
VANISHED = "removed outside Spoon (its container is gone)"


@dataclass
class ReapReport:
    lines: list[str] = field(default_factory=list)
    stopped: int = 0
    orphans_removed: int = 0
    marked_stopped: int = 0
    kept: int = 0
    failed: int = 0
    list_calls: int = 0
    api_calls: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"reapboxes: {self.stopped} stopped, {self.orphans_removed} orphans removed, "
            f"{self.marked_stopped} marked stopped, {self.kept} kept, {self.failed} failed "
            f"({self.list_calls} container list call, {self.api_calls} Docker API calls, "
            f"{self.seconds:.2f} s)"
        )


def reap(idle_seconds: int | None = None, dry_run: bool = False) -> ReapReport:
    if idle_seconds is None:
        idle_seconds = settings.SPOON_BOX_IDLE_SECONDS
    started = time.monotonic()
    calls_before = docker_engine.calls.copy()
    report = ReapReport()
    verb = "would stop" if dry_run else "stopped"

    containers = {
        c.name: c for c in docker_engine.list_containers(labels.this_installations_boxes())
    }
    now = timezone.now()
    boxes = Box.objects.annotate(
        holding_leases=Count(
            "leases",
            filter=Q(leases__expires_at__gt=now) & ~Q(leases__kind__in=Lease.BY_TRAFFIC),
        )
    ).order_by("username")
    idle_before = now - timedelta(seconds=idle_seconds)

    idle, vanished, owned = [], [], set()
    for box in boxes:
        owned.add(box.container_name)
        if box.container_name not in containers:
            if box.state != Box.State.STOPPED:
                vanished.append(box)
        elif box.holding_leases == 0 and box.last_activity_at <= idle_before:
            idle.append(box)
        else:
            report.kept += 1
    orphans = [c for name, c in containers.items() if name not in owned]
    unmeasured = [box for box in quota.due() if box not in idle]

    if dry_run:
        report.lines += [
            f"{verb} {b.container_name} (idle since {b.last_activity_at:%F %T})" for b in idle
        ]
        report.lines += [
            f"would mark {b.container_name} stopped (container gone)" for b in vanished
        ]
        report.lines += [f"would remove orphan {c.name}" for c in orphans]
        report.stopped, report.marked_stopped = len(idle), len(vanished)
        report.orphans_removed = len(orphans)
    else:
        with ThreadPoolExecutor(max_workers=PARALLEL_STOPS) as pool:
            stopped = list(
                pool.map(_in_thread(lifecycle.stop_box_if_idle), idle, [idle_seconds] * len(idle))
            )
            marked = list(pool.map(_in_thread(_mark_stopped_if_gone), vanished))
            removed = list(pool.map(_in_thread(_remove_orphan), orphans))
            measured = list(pool.map(_in_thread(quota.measure), unmeasured))
        for box, done in zip(idle, stopped, strict=True):
            if isinstance(done, Exception):
                report.failed += 1
                report.lines.append(f"could not stop {box.container_name}: {done}")
            elif done:
                report.stopped += 1
                report.lines.append(
                    f"stopped {box.container_name} (idle since {box.last_activity_at:%F %T})"
                )
            else:
                report.kept += 1
        for box, done in zip(vanished, marked, strict=True):
            if isinstance(done, Exception):
                report.failed += 1
                report.lines.append(f"could not check {box.container_name}: {done}")
            elif done:
                report.marked_stopped += 1
                report.lines.append(f"marked {box.container_name} stopped (its container is gone)")
        for container, done in zip(orphans, removed, strict=True):
            if isinstance(done, Exception):
                report.failed += 1
                report.lines.append(f"could not remove orphan {container.name}: {done}")
                continue
            report.orphans_removed += 1
            volume = Box(username=container.labels.get(labels.USER, "?")).volume_name
            report.lines.append(f"removed orphan {container.name} (no user; volume {volume} kept)")
        for box, found in zip(unmeasured, measured, strict=True):
            if isinstance(found, Exception):
                report.lines.append(f"could not measure the home of {box.container_name}: {found}")
            elif found.over:
                report.lines.append(f"the home of {box.container_name} is over its quota: {found}")

    if not dry_run:
        for _, lines in signals.reap_pass.send(sender=Box):
            report.lines += lines or []
    used = docker_engine.calls - calls_before
    report.list_calls = used["containers"]
    report.api_calls = sum(used.values())
    report.seconds = time.monotonic() - started
    if not dry_run:
        metrics.reap_passes.inc()
        metrics.reap_seconds.observe(report.seconds)
        metrics.reap_stopped.inc(report.stopped)
        metrics.reap_failures.inc(report.failed)
    return report


def reap_every(
    seconds: float,
    write: Callable[[str], None],
    idle_seconds: int | None = None,
    passes: int | None = None,
) -> None:
    """A pass every `seconds`, for ever (or `passes` times): the long-running
    reaper. A pass that fails (the engine or the database is down) is
    written and the next one comes as usual: a reaper never gives up."""
    done = 0
    while passes is None or done < passes:
        started = time.monotonic()
        close_old_connections()  # a database restarted since the last pass
        try:
            report = reap(idle_seconds=idle_seconds)
        except (docker_engine.EngineError, DatabaseError) as exc:
            metrics.reap_failures.inc()
            write(f"reapboxes: the pass failed: {exc}")
        else:
            for line in report.lines:
                write(line)
            write(report.summary())
        done += 1
        if passes is None or done < passes:
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))


def _in_thread(fn):
    """Each pool thread opens its own database connection: close it after.
    A failure is returned, not raised, so one box cannot end the pass."""

    def run(*args):
        try:
            return fn(*args)
        except (docker_engine.EngineError, lifecycle.BoxError) as exc:
            return exc
        finally:
            connections.close_all()

    return run


def _mark_stopped_if_gone(box: Box) -> bool:
    with lifecycle.claimed(box, wait=False) as box:
        if box is None or box.state == Box.State.STOPPED:
            return False
        if docker_engine.container_state(box.container_name):
            return False  # an ensure brought it back meanwhile
        box.stop_reason = box.stop_reason or VANISHED
        box.state = Box.State.STOPPED
        box.container_id = ""
        box.stopped_at = timezone.now()
        box.save()
        return True


def _remove_orphan(container: docker_engine.ContainerState) -> None:
    docker_engine.remove_container(container.id)
