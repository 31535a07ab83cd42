"""Applying a user's dotfiles inside their box, as the box user, through the
Docker API: the home is never written from the host, so a symlink the user
planted cannot send a write anywhere they could not write themselves.

An apply makes sure ~/.bash_profile reads ~/.bashrc; (re)clones the dotfiles
repository into ~/.dotfiles and runs its install script when the repository
settings changed since the last successful run (their hash is kept in
~/.spoon/env-hash); then writes the overlay files in one archive, so they win
over whatever the repository wrote, keeping whatever they replace
(overlay.sh). Every run is recorded with its log.
"""

import contextlib
import hashlib
import io
import logging
import tarfile
import time
import uuid
from concurrent.futures import Future
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from boxes import carriers, commands, docker_engine, lifecycle
from boxes.models import Box, Lease
from boxes.use import using_box
from dotfiles import encryption
from dotfiles.models import DotfilesConfig, DotfilesRun, OverlayFile
from dotfiles.redaction import Redactor
from spoon import metrics

logger = logging.getLogger(__name__)

INSTALL_SCRIPTS = (
    "install.sh", "install", "bootstrap.sh", "bootstrap",
    "script/bootstrap", "setup.sh", "setup", "script/setup",
)  # fmt: skip
# Files of the repository that are not dotfiles to link into the home.
NOT_LINKED = (".git", ".github", ".gitignore", ".gitmodules", ".gitattributes")

# The first exec of every apply: fixes ~/.bash_profile, then says which
# repository and overlay were applied last, so an apply with nothing new
# costs this one exec.
# Login shells (every terminal) read ~/.bash_profile and not ~/.profile when
# it exists: so it reads .profile, then .bashrc unless .profile did already.
BASH_PROFILE_FIX = r"""
if [ ! -e ~/.bash_profile ]; then
    cat > ~/.bash_profile <<'PROFILE'
# Written by Spoon: login shells (every terminal) read this file.
[ -f ~/.profile ] && . ~/.profile
if [ -f ~/.bashrc ] && ! grep -qs bashrc ~/.profile; then . ~/.bashrc; fi
PROFILE
    echo "spoon: made ~/.bash_profile read ~/.profile and ~/.bashrc"
elif ! grep -q 'bashrc' ~/.bash_profile; then
    printf '\n%s\n' '[ -f ~/.bashrc ] && . ~/.bashrc  # added by Spoon' >> ~/.bash_profile
    echo "spoon: ~/.bash_profile now reads ~/.bashrc"
fi
"""

PROBE = (
    "set -eu\n"
    + BASH_PROFILE_FIX
    + r"""
echo "env-hash=$(cat ~/.spoon/env-hash 2>/dev/null || true)"
echo "overlay-hash=$(cat ~/.spoon/overlay-hash 2>/dev/null || true)"
"""
)

# Clones (with a private repository's credential) and sets up the dotfiles
# repository: see the scripts.
REPOSITORY = (
    "\n".join((Path(__file__).parent / name).read_text() for name in ("clone.sh", "repository.sh"))
    + BASH_PROFILE_FIX
)

# Writes the overlay without destroying what it did not write: see the script.
OVERLAY = (Path(__file__).parent / "overlay.sh").read_text()


def repository_hash(config: DotfilesConfig | None) -> str:
    if config is None or not config.enabled or not config.repo_url:
        return ""
    text = "\n".join(
        (config.repo_url, config.ref, config.setup_path, str(settings.SPOON_DOTFILES_TIMEOUT),
         *config.setup_args)
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()


def overlay_hash(files: list[tuple[str, bytes, bool]]) -> str:
    digest = hashlib.sha256()
    for path, content, executable in files:
        digest.update(f"{path}\0{int(executable)}\0".encode() + hashlib.sha256(content).digest())
    return digest.hexdigest()


def overlay_archive(files: list[tuple[str, bytes, bool]]) -> bytes:
    """One tar of every overlay file under files/, modes kept, and a manifest
    of their paths with the sha256 of each (overlay.sh compares the home's
    files with it)."""
    buffer = io.BytesIO()
    now = time.time()
    manifest = "".join(
        f"{hashlib.sha256(content).hexdigest()}\t{path}\n" for path, content, _ in files
    ).encode()
    members = [
        *(
            (f"files/{path}", content, 0o755 if executable else 0o644)
            for path, content, executable in files
        ),
        ("manifest", manifest, 0o644),
    ]
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content, mode in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), mode, now
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


class RunLog:
    """The run's log, kept to its last SPOON_DOTFILES_LOG_LIMIT characters and
    saved as it grows, so the page can follow it; it begins with `start`."""

    def __init__(self, run: DotfilesRun, start: str = ""):
        self.run = run
        self.kept = commands.CappedOutput(
            settings.SPOON_DOTFILES_LOG_LIMIT, empty="", keep_last=True
        )
        self.redactor = Redactor.for_user(run.user_id)
        self.kept.add(self.redactor.feed(start))

    @property
    def text(self) -> str:
        """What is kept, the user's secrets masked (dotfiles.redaction) before
        the log is cut to its limit, so no cut leaves half of one showing."""
        return self.kept.value + self.redactor.pending()

    def add(self, text: str) -> None:
        self.kept.add(self.redactor.feed(text))
        with transaction.atomic():
            carriers.hold(self.run)  # a process that lost the apply writes nothing more
            DotfilesRun.objects.filter(pk=self.run.pk).update(log=self.text, steps=self.run.steps)


def apply(box: Box, trigger: str, files_only: bool = False) -> DotfilesRun:
    """Apply the user's dotfiles in their box, holding it meanwhile, and
    record the run.

    The repository runs again when its settings changed, and on "Apply now"
    (which fetches its latest commit), never with files_only; the overlay is
    written when it changed, and always on "Apply now", so that it wins over
    edits made in the box since.
    """
    run = _new_run(box.user, trigger)
    return _carry_out(run, files_only, preferred_image=box.running_image)


def _new_run(user, trigger: str) -> DotfilesRun:
    run = DotfilesRun(user=user, trigger=trigger)
    carriers.new_claim(run)
    run.save()
    prune_history(user)
    return run


def prune_history(user) -> None:
    """Finished applies past the newest SPOON_DOTFILES_RUNS_KEPT go, logs and all."""
    kept = settings.SPOON_DOTFILES_RUNS_KEPT
    finished = DotfilesRun.objects.filter(user=user).exclude(status=DotfilesRun.Status.RUNNING)
    old = list(finished.order_by("-started_at", "-pk").values_list("pk", flat=True)[kept:])
    if old:
        DotfilesRun.objects.filter(pk__in=old).delete()
        logger.info("deleted %s's %d oldest dotfiles runs (SPOON_DOTFILES_RUNS_KEPT=%d)",
                    user, len(old), kept)  # fmt: skip


def _carry_out(
    run: DotfilesRun,
    files_only: bool,
    preferred_image: str = "",
    box_up: Future | None = None,
    adopted: bool = False,
) -> DotfilesRun:
    """Hold the box (on preferred_image, or the user's) while applying; box_up
    learns the box, or why it could not come up. adopted: carry on with an
    apply a stopped Spoon process carried (see _carry_on)."""
    log = RunLog(run)
    if adopted:  # the log so far, less what the repository's job will say again
        log = RunLog(run, start=run.log[: run.job_log_at] if _job_to_follow(run) else run.log)
    code = 0
    holder = f"dotfiles {run.trigger} (run {run.pk})"
    try:
        with carriers.carrying(run):
            # One apply at a time in a home, whichever process starts it.
            with using_box(
                run.user,
                Lease.Kind.DOTFILES,
                holder,
                preferred_image=preferred_image,
                exclusive=True,
            ) as box:
                if box_up is not None:
                    box_up.set_result(box)
                force = run.trigger == DotfilesRun.Trigger.APPLY_NOW
                if adopted:
                    code = _carry_on(box, run, log, force)
                else:
                    code = _apply(box, run.user, run, log, files_only, force=force)
                _record(run, log, code)
                if run.job:  # only once recorded: see _carry_on
                    commands.run(box, [commands.JOB_RUNNER, "--forget", run.job])
                return run
    except carriers.NotCarried as exc:
        logger.info("%s: left to it", exc)
        return run
    except Exception as exc:  # recorded for the user, whatever it was
        if carriers.stopping.is_set():
            return run  # handed on as this process stops: another records it
        if box_up is not None and not box_up.done():
            box_up.set_exception(exc)
        if isinstance(exc, docker_engine.EngineError | lifecycle.BoxError):
            logger.warning("dotfiles apply for %s: no box: %s", run.user, exc)
        else:
            logger.exception("dotfiles apply failed for %s", run.user)
        code = code or 1
        with contextlib.suppress(carriers.NotCarried):
            log.add(f"spoon: the apply failed: {exc}\n")
            _record(run, log, code)
    return run


def _record(run: DotfilesRun, log: RunLog, code: int) -> None:
    run.exit_code = code
    run.status = DotfilesRun.Status.SUCCEEDED if code == 0 else DotfilesRun.Status.FAILED
    if code == 0 and "spoon: warning:" in log.text:
        run.status = DotfilesRun.Status.WARNING
    run.finished_at = timezone.now()
    run.log = log.text
    with transaction.atomic():
        carriers.hold(run)
        run.save(update_fields=["exit_code", "status", "finished_at", "log", "steps"])
    metrics.apply_seconds.labels(run.status).observe(
        (run.finished_at - run.started_at).total_seconds()
    )


def adopt_orphans() -> list[int]:
    """Carry on with the applies a stopped Spoon process carried; their ids."""
    adopted = carriers.claim_orphans(DotfilesRun.objects.filter(status=DotfilesRun.Status.RUNNING))
    for pk in adopted:
        logger.info("dotfiles apply %s: carrying on with it; its process stopped", pk)
        run = DotfilesRun.objects.get(pk=pk)
        carriers.in_a_thread(
            f"dotfiles-{run.user_id}", lambda run=run: _carry_out(run, False, adopted=True)
        )
    return adopted


def _carry_on(box, run: DotfilesRun, log: RunLog, force: bool) -> int:
    """The rest of an apply whose process stopped: its repository step's job
    (which went on in the box) followed to its end and recorded, then the
    apply again without it, from its first step: each skips what is done."""
    code = 0
    if _job_to_follow(run):
        result = _streamed(box, None, log, detached=True, token=run.job, timeout=_time_left(run))
        code = _step(run, log, "repository", result)
    log.add("spoon: Spoon restarted during this apply; it carried on with it\n")
    done = any(step["step"] == "repository" for step in run.steps)
    return _apply(box, run.user, run, log, False, force, repository_done=done) or code


def _job_to_follow(run: DotfilesRun) -> bool:
    """Did the repository step start its job, and not record its end?"""
    return bool(run.job) and not any(step["step"] == "repository" for step in run.steps)


def _time_left(run: DotfilesRun) -> float:
    limit = settings.SPOON_DOTFILES_TIMEOUT + 120
    return max(limit - (timezone.now() - run.started_at).total_seconds(), 0.001)


def _step(run: DotfilesRun, log: RunLog, name: str, result) -> int:
    output = result.output.decode(errors="replace")
    if result.error:
        output += f"spoon: {result.error}\n"
    if (
        not result.ok
        and "spoon: your home has no room" not in output
        and ("No space left on device" in output or "quota exceeded" in output)
    ):
        output += "spoon: your home is full: free some space, then apply again.\n"
    seconds = round(result.duration, 3)
    run.steps.append({"step": name, "exit_code": result.exit_code, "seconds": seconds})
    log.add(output)
    return result.exit_code


def _streamed(box, argv, log: RunLog, **options) -> commands.Result:
    """Run argv with its output going into the run's log as it comes, so a
    page follows a slow install script live."""
    pending = []

    def save():
        # In a thread, while output goes on arriving on the event loop: only
        # the pieces taken here are removed, never one appended meanwhile.
        taken = len(pending)
        text = "".join(pending[:taken])
        del pending[:taken]
        log.add(text)

    return commands.run_following(
        box, argv, lambda text, final: pending.append(text), save, **options
    )


def _repository(box, run, log, config: DotfilesConfig, wanted: str) -> int:
    """Clone and set up the repository; a private one's credential is the
    script's input, never an argument or the environment."""
    try:
        credential = config.credential()
    except encryption.DecryptionError as exc:
        log.add(f"spoon: error: Spoon could not decrypt your {config.get_access_display()}: "
                f"{exc} Give it again on the Dotfiles page.\n")  # fmt: skip
        run.steps.append({"step": "repository", "exit_code": 2})
        return 2
    # A job of the box: an install script goes on when Spoon restarts, and
    # the process that carries on with the apply follows it (_carry_on).
    run.job, run.job_log_at = uuid.uuid4().hex, len(log.text)
    DotfilesRun.objects.filter(pk=run.pk).update(job=run.job, job_log_at=run.job_log_at)
    result = _streamed(
        box,
        ["sh", "-c", REPOSITORY, "repository", config.repo_url, config.ref, config.setup_path,
         str(settings.SPOON_DOTFILES_TIMEOUT), wanted, *config.setup_args],
        log,
        env={"NOT_LINKED": " ".join(NOT_LINKED), "INSTALL_SCRIPTS": " ".join(INSTALL_SCRIPTS),
             "ACCESS": config.access, "TOKEN_USERNAME": config.token_username},
        input=credential.encode() if credential else None,
        timeout=_time_left(run),
        detached=True,
        token=run.job,
    )  # fmt: skip
    return _step(run, log, "repository", result)


def _repository_if_due(box, user, run, log, applied, files_only, force) -> int:
    """The repository step, or the reason it is skipped, recorded."""
    config = DotfilesConfig.objects.filter(user=user).first()
    wanted = repository_hash(config)
    if files_only:
        run.steps.append({"step": "repository", "skipped": "files only"})
    elif not wanted:
        run.steps.append({"step": "repository", "skipped": "no repository"})
    elif applied.get("env-hash") == wanted and not force:
        run.steps.append({"step": "repository", "skipped": "unchanged"})
        log.add("spoon: the dotfiles repository is unchanged; not run again\n")
    else:
        return _repository(box, run, log, config, wanted)
    return 0


def _apply(box, user, run, log, files_only, force, repository_done=False) -> int:
    probe = commands.run(box, ["sh", "-c", PROBE])
    applied = dict(line.split("=", 1) for line in probe.output.decode().splitlines() if "=" in line)
    if probe.ok:  # what it found is for Spoon; the log gets what it did
        probe.output = b"".join(
            line + b"\n" for line in probe.output.splitlines() if line.startswith(b"spoon:")
        )
    code = _step(run, log, "bash_profile", probe)
    if code:
        return code
    if not repository_done:
        code = _repository_if_due(box, user, run, log, applied, files_only, force)
    files = [(f.path, f.content, f.executable) for f in OverlayFile.objects.filter(user=user)]
    digest = overlay_hash(files)
    if digest == applied.get("overlay-hash") and not force:
        run.steps.append({"step": "overlay", "skipped": "unchanged"})
        return code
    result = commands.run(
        box,
        ["sh", "-c", OVERLAY, "overlay", str(len(files)), digest],
        input=overlay_archive(files),
        timeout=120,
    )
    return _step(run, log, "overlay", result) or code


def apply_in_background(
    user, trigger: str, files_only: bool = False, preferred_image: str = "", wait_for_box=False
) -> DotfilesRun:
    """Record a run and carry it out in a thread: a slow or failing setup
    never holds up whoever started the box. The run's log fills as it goes.
    Saves while a files-only run still waits to start join that run: it
    writes whatever files there are when it starts. With wait_for_box, return
    once the box is up, or raise why it could not come up (EngineError,
    BoxError)."""
    if files_only:
        waiting = DotfilesRun.objects.filter(
            user=user, trigger=trigger, status=DotfilesRun.Status.RUNNING, steps=[]
        ).first()
        if waiting is not None:
            return waiting
    run = _new_run(user, trigger)
    box_up: Future = Future()
    carriers.in_a_thread(
        f"dotfiles-{user.pk}", lambda: _carry_out(run, files_only, preferred_image, box_up)
    )
    if wait_for_box:
        box_up.result()
    return run
