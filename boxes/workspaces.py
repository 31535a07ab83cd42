"""Workspaces: a thread's folder, ~/Code/<spoon>/<branch>, made inside the box."""

import re
import urllib.parse

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from boxes import commands
from boxes.models import Lease, RegisteredImage, Workspace
from boxes.naming import validate_workspace_names
from boxes.use import using_box

SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")  # git@host:owner/repo.git

# Runs in the box as its user. Arguments come positionally, never spliced in.
CLONE = r"""
set -eu
dest=$1 url=$2 branch=$3
if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
    echo "the folder $dest exists already and is not empty" >&2
    exit 3
fi
mkdir -p "$dest"
if [ -z "$url" ]; then exit 0; fi
if git ls-remote --exit-code --heads -- "$url" "$branch" >/dev/null 2>&1; then
    git clone --quiet --branch "$branch" -- "$url" "$dest"
else
    git clone --quiet -- "$url" "$dest"
    git -C "$dest" checkout --quiet -b "$branch"
fi
"""
REMOVE = r"""
set -eu
rm -rf -- "$HOME/$1"
rmdir --ignore-fail-on-non-empty -p -- "$(dirname "$HOME/$1")" 2>/dev/null || true
"""


class WorkspaceError(Exception):
    """The workspace could not be made; the message says why."""


def validate_repo_url(url: str) -> None:
    if not url:
        return
    if url.startswith("-") or any(c.isspace() for c in url):
        raise ValidationError("A repository URL cannot start with '-' or hold spaces.")
    allowed = settings.SPOON_WORKSPACE_URL_SCHEMES
    if SCP_LIKE.match(url) and "://" not in url:
        if "ssh" not in allowed:
            raise ValidationError("SSH repository URLs are not allowed here.")
        return
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in allowed:
        raise ValidationError(
            f"Repository URLs must use {', '.join(allowed)}; "
            f"this one uses {parsed.scheme or 'none'}."
        )
    if parsed.password is not None or (parsed.scheme in ("http", "https") and parsed.username):
        raise ValidationError("Put no credentials in the URL; Spoon keeps secrets elsewhere.")
    if parsed.scheme != "file" and not parsed.hostname:
        raise ValidationError("The repository URL has no host.")


def create_workspace(
    user, spoon: str, branch: str, repo_url: str = "", image: RegisteredImage | None = None
) -> Workspace:
    """Validate, make the folder (cloning when a URL is given), record it."""
    validate_workspace_names(spoon, branch)
    validate_repo_url(repo_url)
    if Workspace.objects.filter(user=user, spoon=spoon, branch=branch).exists():
        raise ValidationError(f"You have a workspace {spoon}/{branch} already.")
    workspace = Workspace(user=user, spoon=spoon, branch=branch, repo_url=repo_url, image=image)
    holder = f"making workspace {workspace.relative_path}"
    preferred = image.ref if image else ""
    with using_box(user, Lease.Kind.WORKSPACE, holder, preferred_image=preferred) as box:
        target = f"{box.home}/{workspace.relative_path}"
        result = commands.run(
            box, ["sh", "-c", CLONE, "clone", target, repo_url, branch], timeout=600
        )
    if not result.ok:
        detail = result.error or result.output.decode(errors="replace").strip()[-2000:]
        raise WorkspaceError(f"Making {workspace.relative_path} failed: {detail}")
    try:
        workspace.save()
    except IntegrityError as exc:
        raise ValidationError(f"You have a workspace {spoon}/{branch} already.") from exc
    return workspace


def set_workspace_image(workspace: Workspace, image: RegisteredImage | None) -> None:
    """The box moves to it on the workspace's next terminal or run; a box
    that something else holds moves once that lets go."""
    workspace.image = image
    workspace.save(update_fields=["image"])


def delete_workspace(workspace: Workspace, delete_checkout: bool = False) -> None:
    """Forget the workspace; its folder goes only when asked explicitly."""
    if delete_checkout:
        holder = f"deleting workspace {workspace.relative_path}"
        preferred = workspace.image.ref if workspace.image else ""
        with using_box(
            workspace.user, Lease.Kind.WORKSPACE, holder, preferred_image=preferred
        ) as box:
            result = commands.run(box, ["sh", "-c", REMOVE, "remove", workspace.relative_path])
        if not result.ok:
            raise WorkspaceError(f"Deleting {workspace.relative_path} failed: {result.error}")
    workspace.delete()
