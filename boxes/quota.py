"""The home quota (SPOON_HOME_QUOTA): how much a user's home may take on the
host's disk.

The engine's local volumes cannot be given a size, so Spoon measures (du,
as root in the box) each running box every SPOON_HOME_MEASURE_SECONDS, in
the reaper's passes, beside its stops: a home can outgrow its quota between
two measurements, and one du may take SPOON_DOCKER_TIMEOUT. Past the quota,
new runs, agent turns, workspaces and dotfiles applies are refused with a
sentence; the terminal still opens, so the user can make room, and says
how full the home is from WARN_AT on."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from boxes import docker_engine
from boxes.models import Box

WARN_AT = 0.9  # of the quota
REMEASURE_AFTER = 10  # seconds: a refusal measures again when the figure is older


class HomeFull(ValidationError):
    status = 507  # Insufficient Storage, in the JSON API


def size(count: int) -> str:
    """1536 -> "1.5 KiB"."""
    if count < 1024:
        return f"{count} bytes"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Usage:
    used: int | None  # None: not measured yet
    quota: int | None  # None: no quota

    @property
    def over(self) -> bool:
        return self._at_least(1.0)

    @property
    def near(self) -> bool:
        return self._at_least(WARN_AT)

    def _at_least(self, share: float) -> bool:
        return self.quota is not None and self.used is not None and self.used >= share * self.quota

    def __str__(self) -> str:
        if self.used is None:
            return "not measured yet"
        if self.quota is None:
            return size(self.used)
        return f"{size(self.used)} of {size(self.quota)} ({round(100 * self.used / self.quota)} %)"


def usage(box: Box) -> Usage:
    return Usage(box.home_bytes, settings.SPOON_HOME_QUOTA_BYTES)


def measure(box: Box) -> Usage:
    """Measure the home now (the box must run) and keep the figure. As root
    in the box, so a folder its user made unreadable counts too."""
    now = timezone.now()
    try:
        code, output = docker_engine.exec_run(
            box.container_name, ["du", "-skx", "--", box.home], user="0"
        )
    finally:  # tried now: not again before SPOON_HOME_MEASURE_SECONDS, even if it failed
        Box.objects.filter(pk=box.pk).update(home_measured_at=now)
    last = output.decode(errors="replace").strip().splitlines()[-1:] or [""]
    kibibytes = last[0].split("\t")[0]
    if code != 0 or not kibibytes.isascii() or not kibibytes.isdigit():
        raise docker_engine.EngineError(f"measuring the home failed: {last[0] or code}")
    box.home_bytes, box.home_measured_at = int(kibibytes) * 1024, now
    Box.objects.filter(pk=box.pk).update(home_bytes=box.home_bytes)
    return usage(box)


def due() -> list[Box]:
    """The running boxes not measured for SPOON_HOME_MEASURE_SECONDS (none
    without a quota): the reaper measures them in its pass."""
    if settings.SPOON_HOME_QUOTA_BYTES is None:
        return []
    since = timezone.now() - timedelta(seconds=settings.SPOON_HOME_MEASURE_SECONDS)
    return list(Box.objects.filter(state=Box.State.RUNNING).exclude(home_measured_at__gt=since))


def note(box: Box) -> str:
    """What the terminal's status line says of the home, when it is nearly
    full, by its latest measurement (read again; none without a quota)."""
    if settings.SPOON_HOME_QUOTA_BYTES is None:
        return ""
    box.home_bytes = Box.objects.filter(pk=box.pk).values_list("home_bytes", flat=True).first()
    found = usage(box)
    if found.over:
        return (
            f"Your home is full: {found}, over its quota. Runs, agent turns and applies "
            f"are refused until you delete something."
        )
    if found.near:
        return f"Your home is nearly full: {found}."
    return ""


def refuse_if_over(box: Box, what: str) -> None:
    """Raise HomeFull, saying so, when the home is over its quota. Measured
    again first when it was over last time, so room made since counts."""
    found = usage(box)
    fresh = box.home_measured_at and timezone.now() - box.home_measured_at < timedelta(
        seconds=REMEASURE_AFTER
    )
    if found.over and box.state == Box.State.RUNNING and not fresh:
        try:
            found = measure(box)
        except docker_engine.EngineError:
            pass  # the last figure stands
    if found.over:
        raise HomeFull(
            f"{what} refused: your home uses {found}, over its quota "
            f"(SPOON_HOME_QUOTA). Delete something in your terminal, then try again."
        )
