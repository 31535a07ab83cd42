"""The overlay never destroys what it did not write: what it replaces is kept
and comes back, what the user changed is left alone, and the log says so."""

import pytest

from boxes import commands, lifecycle
from dotfiles import materialize
from dotfiles.models import DotfilesRun, OverlayFile
from tests import reliability

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def box(engine, make_user):
    return lifecycle.ensure_box(make_user())


def put(box, path, content: bytes, executable=False):
    file = OverlayFile.objects.filter(user=box.user, path=path).first() or OverlayFile(
        user=box.user, path=path
    )
    file.content, file.executable = content, executable
    file.save()


def apply(box) -> DotfilesRun:
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == DotfilesRun.Status.SUCCEEDED, run.log
    return run


def delete(box, path) -> DotfilesRun:
    OverlayFile.objects.filter(user=box.user, path=path).delete()
    OverlayFile.objects.filter(user=box.user, path__startswith=path + "/").delete()
    return apply(box)


def read(box, path) -> bytes:
    result = commands.run(box, ["cat", "--", path])
    assert result.ok, result.output
    return result.output


def test_a_hand_made_file_survives_an_overlay_on_its_path_and_comes_back(box, sh):
    sh(box, "printf '[user]\\n  name = by hand\\n' > ~/.gitconfig")
    put(box, ".gitconfig", b"[user]\n  name = from spoon\n")
    run = apply(box)
    assert read(box, ".gitconfig") == b"[user]\n  name = from spoon\n"
    assert read(box, ".spoon/replaced/.gitconfig") == b"[user]\n  name = by hand\n"
    assert "kept your ~/.gitconfig as ~/.spoon/replaced/.gitconfig" in run.log

    run = delete(box, ".gitconfig")
    assert read(box, ".gitconfig") == b"[user]\n  name = by hand\n"
    assert "put back your ~/.gitconfig" in run.log
    assert sh(box, "test -e ~/.spoon/replaced/.gitconfig || echo moved back") == "moved back"


def test_the_homes_own_bashrc_comes_back_when_the_overlay_lets_go(box, sh):
    debian = read(box, ".bashrc")
    assert b"interactive.sh" in debian, "the image's skeleton .bashrc"
    put(box, ".bashrc", b"# mine\n")
    apply(box)
    assert read(box, ".bashrc") == b"# mine\n"
    delete(box, ".bashrc")
    assert read(box, ".bashrc") == debian


def test_a_file_changed_in_the_box_is_never_reverted(box, sh):
    put(box, ".vimrc", b"set number\n")
    apply(box)
    sh(box, "echo 'set nonumber  \" mine now' > ~/.vimrc")
    run = delete(box, ".vimrc")
    assert read(box, ".vimrc") == b'set nonumber  " mine now\n'
    assert "left ~/.vimrc alone: it changed in your box since Spoon wrote it" in run.log


def test_a_new_version_keeps_the_changes_made_in_the_box(box, sh):
    put(box, ".vimrc", b"set number\n")
    apply(box)
    sh(box, "echo 'edited in the box' > ~/.vimrc")
    put(box, ".vimrc", b"set number\nset ruler\n")
    run = apply(box)
    assert read(box, ".vimrc") == b"set number\nset ruler\n"
    kept = sh(box, "ls -A ~/.spoon/replaced/ | grep '^.vimrc.edited-'")
    assert read(box, f".spoon/replaced/{kept}") == b"edited in the box\n"
    assert f"as ~/.spoon/replaced/{kept}" in run.log


def test_a_folder_in_the_way_is_kept_and_comes_back(box, sh):
    sh(box, "mkdir -p ~/.vim/colors && echo dark > ~/.vim/colors/theme.vim")
    put(box, ".vim", b"a file where a folder was\n")
    run = apply(box)
    assert read(box, ".vim") == b"a file where a folder was\n"
    assert read(box, ".spoon/replaced/.vim/colors/theme.vim") == b"dark\n"
    assert "kept your ~/.vim as ~/.spoon/replaced/.vim" in run.log
    delete(box, ".vim")
    assert read(box, ".vim/colors/theme.vim") == b"dark\n"


def test_binary_files_and_executable_bits_are_kept_exactly(box, sh):
    blob = bytes(range(256)) * 64
    made = commands.run(
        box, ["sh", "-c", "mkdir -p ~/bin && cat > ~/bin/tool && chmod 751 ~/bin/tool"], input=blob
    )
    assert made.ok, made.output
    put(box, "bin/tool", b"#!/bin/sh\necho replaced\n", executable=True)
    apply(box)
    assert sh(box, "~/bin/tool; stat -c %a ~/bin/tool") == "replaced\n755"
    assert read(box, ".spoon/replaced/bin/tool") == blob
    assert sh(box, "stat -c %a ~/.spoon/replaced/bin/tool") == "751"
    delete(box, "bin/tool")
    assert read(box, "bin/tool") == blob
    assert sh(box, "stat -c %a ~/bin/tool") == "751"


def test_folders_the_overlay_made_go_when_empty_and_others_stay(box, sh):
    sh(box, "mkdir -p ~/.config && echo keep > ~/.config/mine")
    put(box, ".config/spoon-test/deep/settings.toml", b"x = 1\n")
    put(box, ".local/share/spoon-test/data", b"y\n")
    apply(box)
    run = delete(box, ".config/spoon-test")
    assert sh(box, "test -e ~/.config/spoon-test || echo gone") == "gone"
    assert read(box, ".config/mine") == b"keep\n", "a folder the user had stays"
    assert "removed the empty folder ~/.config/spoon-test/deep" in run.log
    assert "removed the empty folder ~/.config/spoon-test" in run.log
    delete(box, ".local/share/spoon-test")
    assert sh(box, "test -e ~/.local/share/spoon-test || echo gone") == "gone"


def test_a_symlink_on_the_path_is_moved_aside_never_written_through(box, sh):
    sh(box, "echo target > ~/real.txt && ln -s ~/real.txt ~/.linked")
    put(box, ".linked", b"from spoon\n")
    apply(box)
    assert sh(box, "test -L ~/.linked && echo link || echo file") == "file"
    assert read(box, "real.txt") == b"target\n", "the link's target was not written"
    assert sh(box, "readlink ~/.spoon/replaced/.linked") == f"{box.home}/real.txt"
    delete(box, ".linked")
    assert sh(box, "readlink ~/.linked") == f"{box.home}/real.txt"


def test_adopting_a_home_file_unchanged_changes_nothing_and_lets_go_cleanly(box, sh):
    sh(box, "printf 'alias gs=\"git status\"\\n' > ~/.aliases")
    put(box, ".aliases", read(box, ".aliases"))
    apply(box)
    assert read(box, ".aliases") == b'alias gs="git status"\n'
    delete(box, ".aliases")
    assert read(box, ".aliases") == b'alias gs="git status"\n', "the user's own file stays"


def test_an_earlier_spoons_manifest_is_read_safely(box, sh):
    """Before hashes were kept, the manifest held bare paths: such a file is
    treated as possibly changed, kept rather than removed or overwritten."""
    sh(box, "echo old > ~/.oldrc && mkdir -p ~/.spoon")
    sh(box, "printf '.oldrc\\n' > ~/.spoon/overlay-manifest")
    put(box, ".oldrc", b"new\n")
    run = apply(box)
    assert read(box, ".oldrc") == b"new\n"
    assert "kept the changes made in your box to ~/.oldrc" in run.log
    delete(box, ".oldrc")
    assert sh(box, "test -e ~/.oldrc || echo gone") == "gone", (
        "now it is Spoon's, known by its hash"
    )


def test_a_full_home_fails_the_apply_with_a_sentence_and_changes_nothing(engine, make_user, sh):
    from boxes import docker_engine, labels

    user = make_user()
    home = lifecycle.box_for(user)
    docker_engine._client().volumes.create(  # a home of 8 MB, made before the box
        home.volume_name, driver="local", labels=labels.of_home(home.username),
        driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=8m,uid=1000,gid=1000"},
    )  # fmt: skip
    box = lifecycle.ensure_box(user)
    put(box, ".toolrc", b"on\n")
    apply(box)  # ~/.bash_profile and ~/.spoon are made while there is room
    put(box, ".config/tool/config.toml", b"x = 2\n" * 20_000)
    sh(box, "head -c 20M /dev/zero > ~/filler 2>/dev/null; true")

    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == DotfilesRun.Status.FAILED, (run.steps, run.log)
    assert "spoon: your home has no room for your dotfiles (No space left on device)" in run.log
    assert "nothing in it was changed" in run.log
    left = sh(box, "ls -A ~/.spoon; test -e ~/.config/tool || echo no-tool-folder")
    assert "apply" not in left and "no-tool-folder" in left, left
    assert OverlayFile.objects.filter(user=user).count() == 2, "the overlay stays in Spoon"

    sh(box, "rm ~/filler")
    apply(box)
    assert read(box, ".config/tool/config.toml") == b"x = 2\n" * 20_000
    run = delete(box, ".config")
    assert sh(box, "test -e ~/.config/tool || echo gone") == "gone", run.log
    reliability.survived(
        "the home full during a dotfiles apply",
        'the apply fails: "your home has no room for your dotfiles (No space left on '
        'device): nothing in it was changed"; the next apply, with room, writes them',
        "the run (failed) and its log; the overlay files stay in Spoon",
    )
