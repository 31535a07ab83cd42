"""The home's own files, read from the box: the editor shows what a new
overlay path holds there now, and the file tree offers the home's dot-files
that the overlay does not have yet, to adopt in a click."""

import base64

from django.conf import settings
from django.core.exceptions import ValidationError

from boxes import commands
from boxes.models import Lease
from boxes.use import run_if_running, using_box
from dotfiles import validation
from dotfiles.models import OverlayFile

# Files at the top of the home whose names start with '.': size, mode, name.
LIST = r"find . -mindepth 1 -maxdepth 1 -type f -name '.*' -printf '%s\t%m\t%P\n'"
# A regular file (or a link to one), its mode, then its bytes.
READ = r"""
[ -f "$1" ] || exit 3
size=$(stat -L -c %s -- "$1")
[ "$size" -le "$2" ] || exit 4
stat -L -c %a -- "$1"
cat -- "$1"
"""
NOT_LISTED = {".spoon", ".bash_history", ".lesshst", ".viminfo", ".python_history", ".wget-hsts"}


class TooLargeToRead(ValidationError):
    status = 413
    field = "path"


def dotfiles_not_in_overlay(user) -> list[dict] | None:
    """The home's top-level dot-files the overlay does not have; None while
    the box is not running (listing them never starts it)."""
    found = run_if_running(user, Lease.Kind.DOTFILES, "listing your home", ["sh", "-c", LIST])
    if found is None or not found.ok:
        return None
    mine = set(OverlayFile.objects.filter(user=user).values_list("path", flat=True))
    files = []
    for line in found.output.decode(errors="replace").splitlines():
        size, mode, name = line.split("\t", 2)
        if name in mine or name in NOT_LISTED:
            continue
        executable = bool(int(mode, 8) & 0o100)
        files.append({"path": name, "size": int(size), "executable": executable})
    return sorted(files, key=lambda f: f["path"])


def read_home_file(user, path: str) -> dict | None:
    """A file of the home as the API answers it (content, or content_base64
    for bytes that are not UTF-8); None when there is no such file. Starts
    the box when it is stopped: the user asked to see it."""
    path = validation.overlay_path(path)
    limit = settings.SPOON_DOTFILE_MAX_BYTES
    with using_box(user, Lease.Kind.DOTFILES, f"reading ~/{path}") as box:
        found = commands.run(box, ["sh", "-c", READ, "read", path, str(limit)])
    if found.exit_code == 3:
        return None
    if found.exit_code == 4:
        raise TooLargeToRead(f"~/{path} is larger than {limit} bytes, the most a dotfile may be.")
    if not found.ok:
        raise ValidationError(found.error or f"Reading ~/{path} failed.")
    mode, _, content = found.output.partition(b"\n")
    answer = {"path": path, "executable": bool(int(mode, 8) & 0o100), "in_home": True}
    try:
        answer["content"] = content.decode()
    except UnicodeDecodeError:
        answer["content_base64"] = base64.b64encode(content).decode()
    return answer
