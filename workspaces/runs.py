"""Runs: project commands in a workspace, in the owner's box, with their
output kept as it comes and a cancel that ends the process inside the box."""

import contextlib
import logging
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Sum
from django.db.models.functions import Coalesce, Length
from django.utils import timezone

from boxes import carriers, commands, docker_engine, images, lifecycle, processes, quota
from boxes.models import Lease, RegisteredImage
from boxes.use import using_box
from dotfiles.redaction import Redactor
from spoon import metrics
from workspaces import credentials, fanout
from workspaces.limits import Limits
from workspaces.models import Agent, Run, RunChunk, Workspace
from workspaces.transcript import Transcript

logger = logging.getLogger(__name__)

MAX_ARGS = 256
MAX_ARG_LENGTH = 64 * 1024


class Busy(ValidationError):
    """Another run writes to this checkout now."""


def validate_argv(argv) -> list[str]:
    if not isinstance(argv, list) or not argv or len(argv) > MAX_ARGS:
        raise ValidationError("argv is a list of 1 to 256 strings: the command and its arguments.")
    if not all(isinstance(a, str) and "\0" not in a and len(a) <= MAX_ARG_LENGTH for a in argv):
        raise ValidationError("Each argument is a string without NUL bytes, at most 64 KiB.")
    if not argv[0].strip():
        raise ValidationError("The command cannot be empty.")
    return argv


def start_run(
    workspace: Workspace,
    argv: list[str],
    explore: bool = False,
    image: RegisteredImage | None = None,
) -> Run:
    """Queue a project command and carry it out in a thread, on its image (the
    run's > the workspace's > the user's > SPOON_JOB_IMAGE); a missing one
    makes a failed run that says so."""
    run = Run(workspace=workspace, argv=validate_argv(argv), explore=explore)
    quota.refuse_if_over(lifecycle.box_for(workspace.user), "A new run")
    run.image = _needed_image(workspace, image.ref if image else "")
    return _start(workspace, run)


def start_agent_turn(
    workspace: Workspace,
    prompt: str,
    agent: Agent | None = None,
    image: RegisteredImage | None = None,
) -> Run:
    """Queue a coding-agent turn: the run's agent, else the workspace's, else
    the default one. Its image (run > agent > workspace > user >
    SPOON_JOB_IMAGE) is checked first."""
    if not isinstance(prompt, str) or not prompt.strip() or "\0" in prompt:
        raise ValidationError("A turn needs a prompt.")
    agent = agent or workspace.turn_agent()
    if agent is None:
        raise ValidationError("No agent is registered; add one in the admin.")
    box = lifecycle.box_for(workspace.user)
    quota.refuse_if_over(box, "A new agent turn")
    credentials.refuse_if_surely_missing(agent, box)
    explicit = image.ref if image else agent.image
    try:
        images.resolve_image(explicit=explicit, preferred=workspace.image_ref, box=box)
    except docker_engine.EngineError as exc:
        raise ValidationError(str(exc)) from exc
    run = Run(workspace=workspace, argv=agent.command(prompt), agent=agent, prompt=prompt)
    run.image = _needed_image(workspace, explicit)
    return _start(workspace, run)


def _needed_image(workspace: Workspace, explicit: str) -> str:
    """A run needs its workspace's image as much as its own: it never runs in
    a box left on another image because something else holds the box."""
    return explicit or workspace.image_ref


def _writers(workspace: Workspace):
    return workspace.runs.exclude(status__in=Run.FINISHED).filter(explore=False, worktree="")


def _start(workspace: Workspace, run: Run) -> Run:
    """One write run per checkout; another gets a git worktree of its own,
    and explore (read-only) runs share the checkout."""
    # Read from the folder, not from how the workspace was made: `git init`
    # in an empty one makes it a checkout. Asked outside the row lock, which
    # on SQLite is the whole database's, and only when it could matter.
    checkout = None if run.explore or not _writers(workspace).exists() else is_checkout(workspace)
    with transaction.atomic():  # the workspace's row lock: two writers decide in turn
        Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
        needs_worktree = not run.explore and _writers(workspace).exists()
        if needs_worktree and checkout is None:
            checkout = is_checkout(workspace)  # a writer started in between
        if needs_worktree and not checkout:
            raise Busy(
                "Another run is writing in this folder, and it is not a git checkout, so this "
                "run cannot have a worktree of its own: wait for it or cancel it."
            )
        run.token = uuid.uuid4().hex
        carriers.new_claim(run)
        run.save()
        if needs_worktree:
            run.worktree = f"{WORKTREES}/run-{run.pk}"
            run.save(update_fields=["worktree"])
    _carry_in_thread(run.pk)
    prune_history(workspace.user)
    return run


def prune_history(user) -> int:
    """Delete a user's finished runs past the newest SPOON_RUNS_KEPT, with
    their output, and say so in the log. A run that still names a worktree
    in the box is kept, so none is forgotten there."""
    finished = Run.objects.filter(workspace__user=user, status__in=Run.FINISHED)
    finished = finished.exclude(worktree__gt="", worktree_removed=False)
    old = list(finished.order_by("-created_at", "-pk").values_list("pk", flat=True)[
        settings.SPOON_RUNS_KEPT :
    ])  # fmt: skip
    if old:
        Run.objects.filter(pk__in=old).delete()
        logger.info("deleted %s's %d oldest finished runs (SPOON_RUNS_KEPT=%d)",
                    user, len(old), settings.SPOON_RUNS_KEPT)  # fmt: skip
    return len(old)


def _carry_in_thread(pk: int) -> None:
    # A row of its own: the caller keeps (and refreshes) the one returned.
    carriers.in_a_thread(f"run-{pk}", lambda: carry_out(Run.objects.get(pk=pk)))


def adopt_orphans() -> list[int]:
    """Carry on with the runs a stopped Spoon process carried: a command still
    going in its box is followed again (its output from the start, its end
    recorded when it comes), one that ended meanwhile is recorded with its
    real exit status, and a queued one starts. Their ids."""
    adopted = carriers.claim_orphans(Run.objects.exclude(status__in=Run.FINISHED))
    for pk in adopted:
        logger.info("run %s: carrying on with it; the process that carried it stopped", pk)
        _carry_in_thread(pk)
    return adopted


PROBE_CHECKOUT = 'cd "$1" 2>/dev/null && git rev-parse --is-inside-work-tree 2>/dev/null'


def is_checkout(workspace: Workspace) -> bool:
    """Is the workspace's folder (in its running box) inside a git work tree?"""
    holder = f"checking {workspace.relative_path}"
    with using_box(
        workspace.user, Lease.Kind.RUN, holder, preferred_image=workspace.image_ref
    ) as box:
        found = commands.run(box, ["sh", "-c", PROBE_CHECKOUT, "probe", workspace.folder(box)])
    return found.ok and found.output.strip() == b"true"


def carry_out(run: Run) -> Run:
    """Bring the box up (holding a run lease), start the command as a job of
    the box, or follow the job a stopped Spoon process left, stream its
    output into the run as it comes, and record how it really ended."""
    with carriers.carrying(run):
        return _carry_out(run)


def _carry_out(run: Run) -> Run:
    workspace = run.workspace
    holder = f"run {run.pk} in {workspace}"
    preferred = workspace.image_ref
    limits = Limits.of(run)
    try:
        with using_box(
            workspace.user, Lease.Kind.RUN, holder, image=run.image, preferred_image=preferred
        ) as box:
            _record(run, _carry_in(run, box, limits), limits)
            # Only once it is recorded: a Spoon that stops before would find
            # the job gone, and could not tell how it ended.
            commands.run(box, [commands.JOB_RUNNER, "--forget", run.token])
            return run
    except carriers.NotCarried as exc:
        logger.info("%s: left to it", exc)
        return run
    except (docker_engine.EngineError, lifecycle.BoxError) as exc:
        failure = commands.Result(commands.ENGINE_FAILED, b"", 0.0, error=str(exc))
    except Exception as exc:  # a run must end recorded, never stay "running"
        if carriers.stopping.is_set():
            return run  # handed on as this process stops: another records it
        logger.exception("run %s failed", run.pk)
        failure = commands.Result(commands.ENGINE_FAILED, b"", 0.0, error=f"Spoon failed: {exc}")
    if not run.finished:
        with contextlib.suppress(carriers.NotCarried):
            _record(run, failure, limits)
    return run


def _carry_in(run: Run, box, limits: Limits) -> commands.Result:
    checkout = run.workspace.folder(box)
    if run.status == Run.Status.RUNNING:  # carried by a Spoon process that stopped
        cwd = f"{checkout}/{run.worktree}" if run.worktree else checkout
        result = _stream_into(run, box, cwd, limits, follow_only=True)
        if run.worktree:
            remove_worktree(run, box, checkout)
        return result
    started = Run.objects.filter(
        pk=run.pk, status=Run.Status.QUEUED, cancel_requested=False
    ).update(status=Run.Status.RUNNING, started_at=timezone.now())
    if not started:  # cancelled while the box came up
        return commands.Result(commands.ENGINE_FAILED, b"", 0.0, error="cancelled")
    run.refresh_from_db(fields=["status", "started_at"])
    fanout.publish(run.pk, status=Run.Status.RUNNING)
    if run.agent_id and not credentials.found(run.agent, box):
        why = run.agent.credentials_wanted()
        return commands.Result(commands.ENGINE_FAILED, b"", 0.0, error=why)
    if run.worktree:
        return _in_worktree(run, box, checkout, limits)
    return _stream_into(run, box, checkout, limits)


def _record(run: Run, result: commands.Result, limits: Limits) -> None:
    """Record how the run ended (only while this process carries it:
    carriers.NotCarried otherwise)."""
    mine = run.carrier
    run.refresh_from_db()
    run.carrier = mine
    if run.cancel_requested:
        run.status, run.error = Run.Status.CANCELLED, "cancelled"
    elif result.stopped_by:
        run.status, run.error = Run.Status.FAILED, limits.sentence(result.stopped_by)
    elif result.error and result.exit_code == commands.ENGINE_FAILED:
        # Spoon's own reason (the box stopped, the engine failed) comes before
        # whatever the command printed last.
        run.status, run.error = Run.Status.FAILED, result.error
    elif run.agent_id and _agent_error(run):
        run.status, run.error = Run.Status.FAILED, _agent_error(run)
    elif result.ok:
        run.status = Run.Status.SUCCEEDED
    else:
        run.status = Run.Status.FAILED
        run.error = result.error or f"exited with {result.exit_code}"
    run.exit_code = result.exit_code
    run.finished_at = timezone.now()
    with transaction.atomic():  # its chunks become the record in the same step
        carriers.hold(run)
        pieces = RunChunk.objects.filter(run_id=run.pk).order_by("seq").values_list("text")
        run.recorded_output = "".join(text for (text,) in pieces)
        run.save(update_fields=["status", "error", "exit_code", "finished_at", "recorded_output"])
        RunChunk.objects.filter(run_id=run.pk).delete()
    fanout.publish(run.pk, status=run.status)
    if run.started_at:
        metrics.run_seconds.labels("agent" if run.agent_id else "command", run.status).observe(
            (run.finished_at - run.started_at).total_seconds()
        )


WORKTREES = ".worktrees"
ADD_WORKTREE = r"""
set -e
cd "$1"
grep -qsx '.worktrees/' .gitignore || echo '.worktrees/' >> .gitignore
mkdir -p .worktrees
git worktree add --quiet --detach "$2" 2>&1
"""
REMOVE_WORKTREE = r"""
cd "$1" && git worktree remove --force "$2" 2>/dev/null; rm -rf -- "$2"; git worktree prune
"""


def _in_worktree(run: Run, box, checkout: str, limits: "Limits") -> commands.Result:
    made = commands.run(box, ["sh", "-c", ADD_WORKTREE, "add", checkout, run.worktree])
    if not made.ok:
        detail = made.error or made.output.decode(errors="replace").strip()[-500:]
        return commands.Result(made.exit_code or 1, b"", made.duration, f"No worktree: {detail}")
    try:
        return _stream_into(run, box, f"{checkout}/{run.worktree}", limits)
    finally:
        remove_worktree(run, box, checkout)


def remove_worktree(run: Run, box, checkout: str) -> bool:
    removed = commands.run(box, ["sh", "-c", REMOVE_WORKTREE, "remove", checkout, run.worktree])
    if removed.ok:
        Run.objects.filter(pk=run.pk).update(worktree_removed=True)
    return removed.ok


def _agent_error(run: Run) -> str:
    errors = [e["text"] for e in run.transcript if e.get("kind") == "error"]
    return errors[-1] if errors else ""


def _stream_into(
    run: Run, box, cwd: str, limits: "Limits", follow_only: bool = False
) -> commands.Result:
    """Run the command as a job of the box, with its output (capped) stored
    as it comes, so pages follow it live, and for an agent its transcript
    stored at the end. follow_only follows the job a stopped Spoon process
    started: its output is read again from the start, and what is recorded
    already is not written twice."""
    transcript = Transcript() if run.agent_id else None
    output = commands.CappedOutput(settings.SPOON_EXEC_OUTPUT_LIMIT, empty="")
    redactor = Redactor.for_user(box.user_id)
    recorded = RunChunk.objects.filter(run_id=run.pk).aggregate(
        chars=Coalesce(Sum(Length("text")), 0), seq=Coalesce(Max("seq"), 0)
    )

    ended = False

    def take_text(piece: str, final: bool) -> None:
        nonlocal ended
        piece = redactor.feed(piece) + (redactor.flush() if final else "")
        if transcript:
            transcript.feed(piece)
            if final:
                transcript.close()
        ended = final
        output.add(piece)

    written = {"chars": recorded["chars"], "seq": recorded["seq"], "truncated": False}

    def save() -> None:
        # Only what is new is written: a chunk appended, never the whole output again.
        new = output.value[written["chars"] :]
        changed = {}
        if output.truncated != written["truncated"]:
            changed["output_truncated"] = output.truncated
        if transcript and ended:  # written once: while it runs, it is read from the output
            changed["transcript"] = [e.as_dict() for e in transcript.entries]
        if not new and not changed:
            return
        with transaction.atomic():
            carriers.hold(run)  # a process that lost the run writes nothing more
            if new:
                RunChunk.objects.create(run_id=run.pk, seq=written["seq"] + 1, text=new)
            if changed:
                Run.objects.filter(pk=run.pk).update(**changed)
        written["truncated"] = output.truncated
        if new:
            written["seq"] += 1
            written["chars"] += len(new)
            fanout.publish(run.pk, seq=written["seq"], text=new)

    elapsed = (timezone.now() - run.started_at).total_seconds()
    return commands.run_following(
        box,
        None if follow_only else run.argv,
        take_text,
        save,
        cwd=cwd,
        token=run.token,
        timeout=max(limits.timeout - elapsed, 0.001),
        silence=limits.silence,
        detached=True,
    )


def cancel_run(run: Run) -> Run:
    """End the run's process inside the box (not only its stream)."""
    Run.objects.filter(pk=run.pk).update(cancel_requested=True)
    run.refresh_from_db()
    if run.status == Run.Status.QUEUED:
        Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
            status=Run.Status.CANCELLED, error="cancelled", finished_at=timezone.now()
        )
    elif run.status == Run.Status.RUNNING:
        box = lifecycle.box_for(run.workspace.user)
        processes.kill(box, run.token)
    run.refresh_from_db()
    return run
