"""Workspaces are folders, ~/Code/<spoon>/<branch>, made inside the user's
box: their names and repository URLs, making (cloning) and deleting them,
and choosing their image and agent."""

import contextlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from boxes import commands, lifecycle, naming, quota
from boxes.models import Lease, RegisteredImage
from boxes.use import using_box
from workspaces.models import Agent, Workspace

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
rm -rf -- "$1"
rmdir --ignore-fail-on-non-empty -p -- "$(dirname "$1")" 2>/dev/null || true
"""


class WorkspaceError(Exception):
    """The workspace could not be made; the message says why."""


def validate_workspace_names(spoon: str, branch: str) -> None:
    """A spoon is one folder name; a branch may hold '/' between folder names.
    The error names its field (spoon or branch)."""
    if not naming.SEGMENT.match(spoon) or ".." in spoon:
        raise ValidationError({"spoon": (
            f"Spoon name {spoon!r}: use letters, digits, '.', '_' or '-', starting with a "
            "letter or digit, at most 64 characters."
        )})  # fmt: skip
    with field_errors("branch"):
        naming.validate_git_ref(branch)


def validate_repo_url(url: str) -> None:
    if url:
        with field_errors("repo_url"):
            naming.validate_repo_url(url, settings.SPOON_WORKSPACE_URL_SCHEMES)


@contextlib.contextmanager
def field_errors(name: str):
    """A ValidationError raised in the block names the field at fault."""
    try:
        yield
    except ValidationError as exc:
        raise ValidationError({name: exc.messages}) from exc


def create_workspace(
    user, spoon: str, branch: str, repo_url: str = "", image: RegisteredImage | None = None
) -> Workspace:
    """Validate, make the folder (cloning when a URL is given), record it."""
    validate_workspace_names(spoon, branch)
    validate_repo_url(repo_url)
    taken = ValidationError({"branch": f"You have a workspace {spoon}/{branch} already."})
    if Workspace.objects.filter(user=user, spoon=spoon, branch=branch).exists():
        raise taken
    quota.refuse_if_over(lifecycle.box_for(user), "A new workspace")
    workspace = Workspace(user=user, spoon=spoon, branch=branch, repo_url=repo_url, image=image)
    holder = f"making workspace {workspace.relative_path}"
    preferred = workspace.image_ref
    with using_box(user, Lease.Kind.WORKSPACE, holder, preferred_image=preferred) as box:
        target = workspace.folder(box)
        result = commands.run(
            box, ["sh", "-c", CLONE, "clone", target, repo_url, branch], timeout=600
        )
    if not result.ok:
        detail = result.error or result.output.decode(errors="replace").strip()[-2000:]
        raise WorkspaceError(f"Making {workspace.relative_path} failed: {detail}")
    try:
        workspace.save()
    except IntegrityError as exc:
        raise taken from exc
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
        preferred = workspace.image_ref
        with using_box(
            workspace.user, Lease.Kind.WORKSPACE, holder, preferred_image=preferred
        ) as box:
            result = commands.run(box, ["sh", "-c", REMOVE, "remove", workspace.folder(box)])
        if not result.ok:
            raise WorkspaceError(f"Deleting {workspace.relative_path} failed: {result.error}")
    workspace.delete()


def choose_agent(workspace: Workspace, agent: Agent | None) -> None:
    """The agent for the workspace's turns; None goes back to the default."""
    workspace.agent = agent
    workspace.save(update_fields=["agent"])
