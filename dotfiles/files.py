"""The overlay's files as users edit them: limits, renames, folders, and a
files-only apply when the box runs."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum

from boxes.models import Box
from dotfiles import validation
from dotfiles.models import DotfilesRun, OverlayFile


class TooLarge(ValidationError):
    # The JSON API answers it as 413, about the content.
    status = 413
    field = "content"


def total_bytes(user, excluding: str | None = None) -> int:
    files = OverlayFile.objects.filter(user=user)
    if excluding:
        files = files.exclude(path=excluding)
    return files.aggregate(total=Sum("size"))["total"] or 0


class TooMany(ValidationError):
    status = 413
    field = "path"


def save_file(user, path: str, content: bytes, executable: bool) -> OverlayFile:
    path = validation.overlay_path(path)
    limit = settings.SPOON_DOTFILE_MAX_BYTES
    if len(content) > limit:
        raise TooLarge(f"{path} is {len(content)} bytes; a file may have at most {limit}.")
    with transaction.atomic():
        _one_saver_at_a_time(user)
        total_limit = settings.SPOON_DOTFILES_MAX_TOTAL_BYTES
        if total_bytes(user, excluding=path) + len(content) > total_limit:
            raise TooLarge(f"{path} does not fit: your files may take {total_limit} bytes in all.")
        _refuse_clashes(user, path)
        file = OverlayFile.objects.filter(user=user, path=path).first()
        if file is None:
            most = settings.SPOON_DOTFILES_MAX_FILES
            if OverlayFile.objects.filter(user=user).count() >= most:
                raise TooMany(f"You have {most} files already, as many as you may keep.")
            file = OverlayFile(user=user, path=path)
        file.content, file.executable = content, executable
        file.save()
    return file


def _one_saver_at_a_time(user) -> None:
    """Lock the user's row till the transaction ends, so the limits checked
    next still hold when the save lands: without it, 40 saves at once each saw
    room for themselves (PostgreSQL locks the row; SQLite, whose transactions
    here begin IMMEDIATE, locks the whole database anyway)."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()


def inside(user, folder: str):
    """The user's files under folder, matched exactly: the database's
    startswith ignores case on SQLite (LIKE), and `MANY` is not `many`."""
    prefix = folder + "/"
    found = OverlayFile.objects.filter(user=user, path__startswith=prefix)
    exact = [pk for pk, path in found.values_list("pk", "path") if path.startswith(prefix)]
    return OverlayFile.objects.filter(pk__in=exact)


def _refuse_clashes(user, path: str, ignoring=()) -> None:
    """A file cannot stand where a folder of files is, nor inside a file."""
    others = OverlayFile.objects.filter(user=user).exclude(pk__in=ignoring)
    if inside(user, path).exclude(pk__in=ignoring).exists():
        raise ValidationError(f"{path} is a folder of your files already.")
    parents = ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1)]
    if others.filter(path__in=parents).exists():
        raise ValidationError(f"A part of {path} is one of your files, not a folder.")


def delete_path(user, path: str) -> int:
    """Delete a file, or a folder with everything in it; returns how many files."""
    path = validation.overlay_path(path)
    deleted, _ = OverlayFile.objects.filter(user=user, path=path).delete()
    if not deleted:
        deleted, _ = inside(user, path).delete()
    return deleted


def rename_path(user, old: str, new: str) -> int:
    """Rename a file or a folder; contents are re-encrypted for their new paths."""
    old, new = validation.overlay_path(old), validation.overlay_path(new)
    if old == new:
        return 0
    moving = list(OverlayFile.objects.filter(user=user, path=old)) or list(inside(user, old))
    if not moving:
        raise ValidationError(f"You have no file or folder {old}.")
    targets = {f.path: new + f.path[len(old) :] for f in moving}
    for target in targets.values():
        validation.overlay_path(target)
        _refuse_clashes(user, target, ignoring=[f.pk for f in moving])
    clash = OverlayFile.objects.filter(user=user, path__in=targets.values()).exclude(
        pk__in=[f.pk for f in moving]
    )
    if clash.exists():
        raise ValidationError(f"{clash.first().path} exists already.")
    with transaction.atomic():
        for file in moving:
            content = file.content
            file.path = targets[file.path]
            file.content = content  # bound to the new path
            file.save()
    return len(moving)


def apply_if_running(user) -> DotfilesRun | None:
    """After an edit: write the files into a running box (not the
    repository); the run doing it, or None when the box is not running."""
    from dotfiles.materialize import apply_in_background

    box = Box.objects.filter(user=user, state=Box.State.RUNNING).first()
    if box is None:
        return None
    trigger = DotfilesRun.Trigger.FILES_SAVED
    return apply_in_background(user, trigger, files_only=True, preferred_image=box.running_image)
