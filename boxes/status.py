"""A box as its user sees it: running, stopped, starting or update pending,
since when, on which image, and how long it has left before an idle stop."""

from dataclasses import dataclass, replace
from datetime import datetime

from boxes import docker_engine, leases, quota
from boxes.models import Box


@dataclass(frozen=True)
class BoxStatus:
    state: str  # running, update pending, starting, stopped, not made yet, unknown
    since: datetime | None
    image: str
    stops_in: float | None  # seconds before an idle stop; None while work holds it
    held_by: list[str]  # kinds of work holding it now
    stop_reason: str
    error: str  # why the state is unknown (the engine is down)
    home: quota.Usage | None = None  # what the home takes, when measured

    @property
    def running(self) -> bool:
        return self.state in ("running", "update pending")

    @property
    def idle_stop(self) -> str:
        """When an idle stop would come, in words."""
        if self.held_by:
            return f"not while work holds it ({', '.join(self.held_by)})"
        if self.stops_in is None:
            return ""
        if self.stops_in <= 0:
            return "due now: it stops at the next reap"
        minutes = round(self.stops_in / 60)
        left = f"{minutes} minute{'' if minutes == 1 else 's'}" if minutes else "less than a minute"
        return f"in {left} unless something happens in it"


def status_of(user) -> BoxStatus:
    box = Box.objects.filter(user=user).first()
    if box is None:
        return BoxStatus("not made yet", None, "", None, [], "", "")
    found = _status(box)
    home = quota.usage(box)
    return replace(found, home=home) if home.used is not None else found


def _status(box: Box) -> BoxStatus:
    try:
        found = docker_engine.container_state(box.container_name)
    except docker_engine.EngineError as exc:
        return BoxStatus("unknown", None, box.running_image, None, [], "", str(exc))
    image = box.running_image or box.image
    if box.is_claimed() and not (found and found.running):
        return BoxStatus("starting", box.started_at, image, None, [], "", "")
    if found is None or not found.running:
        return BoxStatus("stopped", box.stopped_at, image, None, [], box.stop_reason, "")
    holding = sorted(set(box.leases.holding().values_list("kind", flat=True)))
    state = "update pending" if box.update_pending else "running"
    stops_in = None if holding else leases.idle_stop_in(box)
    return BoxStatus(state, box.started_at, image, stops_in, holding, "", "")
