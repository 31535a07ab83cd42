"""Workspaces are folders ~/Code/<spoon>/<branch> made inside the box."""

import pytest
from django.core.exceptions import ValidationError

from boxes import lifecycle
from workspaces import folders
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def user(engine, make_user):
    return make_user()


def test_a_workspace_is_a_folder_owned_by_the_box_user(user, sh):
    workspace = folders.create_workspace(user, "spoon", "main")
    box = lifecycle.box_for(user)
    assert workspace.relative_path == "Code/spoon/main"
    assert sh(box, "stat -c %U ~/Code/spoon/main") == box.username


@pytest.fixture
def origin(user, settings, sh):
    """A repository with branches main and feature/x, inside the box (boxes have no network)."""
    settings.SPOON_WORKSPACE_URL_SCHEMES = ["https", "ssh", "file"]
    box = lifecycle.ensure_box(user)
    sh(
        box,
        "git init -q -b main ~/origin && cd ~/origin && git config user.email t@t && "
        "git config user.name t && echo one > a.txt && git add a.txt && git commit -qm one && "
        "git checkout -qb feature/x && echo two > b.txt && git add b.txt && git commit -qm two && "
        "git checkout -q main",
    )
    return f"file://{box.home}/origin"


def test_clone_at_an_existing_branch(user, origin, sh):
    folders.create_workspace(user, "proj", "feature/x", repo_url=origin)
    box = lifecycle.box_for(user)
    assert sh(box, "cd ~/Code/proj/feature/x && git branch --show-current && ls") == (
        "feature/x\na.txt\nb.txt"
    )


def test_clone_makes_a_new_branch_from_the_default_one(user, origin, sh):
    folders.create_workspace(user, "proj", "thread-1", repo_url=origin)
    box = lifecycle.box_for(user)
    assert (
        sh(box, "cd ~/Code/proj/thread-1 && git branch --show-current && ls") == "thread-1\na.txt"
    )


def test_a_failed_clone_records_nothing_and_says_why(user, settings):
    settings.SPOON_WORKSPACE_URL_SCHEMES = ["file"]
    with pytest.raises(folders.WorkspaceError, match="Making Code/proj/main failed"):
        folders.create_workspace(user, "proj", "main", repo_url="file:///nowhere/repo")
    assert not Workspace.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    "spoon, branch",
    [
        ("..", "main"),
        ("a/b", "main"),
        ("-rf", "main"),
        ("ok", "../escape"),
        ("ok", "-b"),
        ("ok", "a//b"),
        ("ok", "feature/"),
        ("ok", "x.lock"),
        ("ok", "a b"),
        ("", "main"),
    ],
)
def test_bad_names_are_refused(user, spoon, branch):
    with pytest.raises(ValidationError):
        folders.create_workspace(user, spoon, branch)


@pytest.mark.parametrize(
    "url, why",
    [
        ("http://example.com/r.git", "must use https, ssh"),
        ("https://user:secret@example.com/r.git", "no credentials"),
        ("https://token@example.com/r.git", "no credentials"),
        ("-uhttps://example.com", "cannot start with '-'"),
        ("file:///etc", "must use https, ssh"),
        ("ext::sh -c touch% /tmp/pwned", "spaces"),
        ("https:///nohost", "no host"),
    ],
)
def test_bad_repo_urls_are_refused(url, why):
    with pytest.raises(ValidationError, match=why):
        folders.validate_repo_url(url)


def test_good_repo_urls(settings):
    for url in (
        "https://example.com/r.git",
        "git@example.com:owner/r.git",
        "ssh://git@example.com/r",
    ):
        folders.validate_repo_url(url)


def test_a_duplicate_is_refused(user):
    folders.create_workspace(user, "proj", "main")
    with pytest.raises(ValidationError, match="already"):
        folders.create_workspace(user, "proj", "main")


def test_deleting_keeps_the_checkout_unless_asked(user, sh):
    box = lifecycle.box_for(user)
    kept = folders.create_workspace(user, "proj", "keep")
    sh(box, "echo work > ~/Code/proj/keep/file")
    folders.delete_workspace(kept)
    assert sh(box, "cat ~/Code/proj/keep/file") == "work"

    gone = folders.create_workspace(user, "other", "feature/deep")
    folders.delete_workspace(gone, delete_checkout=True)
    assert sh(box, "ls ~/Code") == "proj", "the checkout and its empty parents are gone"
    assert not Workspace.objects.filter(user=user).exists()
