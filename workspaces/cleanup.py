"""Worktrees whose run is over but that are still in a box (the server stopped
mid-run, or removing one failed) go at the next reap pass."""

from django.dispatch import receiver

from boxes import docker_engine
from boxes.models import Box
from boxes.signals import reap_pass
from workspaces.models import Run
from workspaces.runs import remove_worktree


@receiver(reap_pass, dispatch_uid="workspaces-stale-worktrees")
def remove_stale_worktrees(sender, **kwargs) -> list[str]:
    lines = []
    stale = (
        Run.objects.filter(status__in=Run.FINISHED, worktree_removed=False)
        .exclude(worktree="")
        .select_related("workspace")
    )
    for run in stale:
        box = Box.objects.filter(user_id=run.workspace.user_id, state=Box.State.RUNNING).first()
        if box is None:
            continue  # the next pass that finds the box running takes it
        checkout = run.workspace.folder(box)
        try:
            if remove_worktree(run, box, checkout):
                lines.append(f"removed stale worktree {run.worktree} of {box.container_name}")
        except docker_engine.EngineError as exc:
            lines.append(f"could not remove worktree {run.worktree}: {exc}")
    return lines
