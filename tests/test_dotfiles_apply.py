"""Applying dotfiles inside a real box: the repository conventions, the overlay,
the hash that skips a second run, and what a planted symlink cannot do."""

import subprocess
import sys
import time

import pytest

from boxes import commands, lifecycle
from boxes.models import Lease
from dotfiles import materialize
from dotfiles.models import DotfilesConfig, DotfilesRun, OverlayFile, Secret
from tests.support import REPO, spoon_process_env
from tests.waits import gate, join_threads, open_gate, until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def box(engine, make_user, settings):
    settings.SPOON_DOTFILES_URL_SCHEMES = ["https", "ssh", "file"]
    return lifecycle.ensure_box(make_user())


def make_repo(sh, box, files: dict[str, str], executable=(), branch="main"):
    """A git repository made in the box (which has no network), served by file://."""
    script = [
        "set -e", "rm -rf ~/src/dots", "mkdir -p ~/src/dots", "cd ~/src/dots",
        f"git init -q -b {branch}", "git config user.email t@t", "git config user.name t",
    ]  # fmt: skip
    for path, content in files.items():
        script.append(f"mkdir -p \"$(dirname '{path}')\" && printf '%s' '{content}' > '{path}'")
    for path in executable:
        script.append(f"chmod +x '{path}'")
    script += ["git add -A", "git commit -qm dots"]
    sh(box, "\n".join(script))
    return f"file://{box.home}/src/dots"


def configure(box, url, ref="", setup_path=""):
    DotfilesConfig.objects.update_or_create(
        user=box.user, defaults={"repo_url": url, "ref": ref, "setup_path": setup_path}
    )


def add_file(box, path, content: bytes, executable=False):
    f = OverlayFile(user=box.user, path=path, executable=executable)
    f.content = content
    f.save()


@pytest.mark.parametrize("script", materialize.INSTALL_SCRIPTS)
def test_each_install_script_convention(box, script, sh):
    others = {
        s: "#!/bin/sh\necho wrong > ~/ran\n" for s in materialize.INSTALL_SCRIPTS if s != script
    }
    chosen_first = materialize.INSTALL_SCRIPTS.index(script)
    files = {s: c for s, c in others.items() if materialize.INSTALL_SCRIPTS.index(s) > chosen_first}
    files[script] = f"#!/bin/sh\necho {script} > ~/ran\n"
    configure(box, make_repo(sh, box, files))
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == DotfilesRun.Status.SUCCEEDED, run.log
    assert sh(box, "cat ~/ran") == script
    assert f"running {script}" in run.log


def test_without_a_script_dotfiles_are_linked_and_clashes_kept(box, sh):
    configure(
        box,
        make_repo(sh, box, {".gitconfig": "[user]\n", ".bashrc": "alias hi=true\n", "README": "x"}),
    )
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == DotfilesRun.Status.SUCCEEDED, run.log
    assert sh(box, "readlink ~/.gitconfig") == f"{box.home}/.dotfiles/.gitconfig"
    assert sh(box, "readlink ~/.bashrc") == f"{box.home}/.dotfiles/.bashrc"
    assert "interactive.sh" in sh(box, "cat ~/.bashrc.bak"), "the home's own .bashrc moved aside"
    assert sh(box, "ls -A ~ | grep -c '^README$' || true") == "0"
    assert sh(box, "test -L ~/.git || echo not-linked") == "not-linked"
    # A later clash finds .bak taken: it never overwrites it.
    sh(box, "rm ~/.bashrc && echo 'mine again' > ~/.bashrc")
    files = {".gitconfig": "[user]\n", ".bashrc": "alias hi=1\n"}
    configure(box, make_repo(sh, box, files, branch="next"), ref="next")  # runs again
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert "moved your ~/.bashrc to ~/.bashrc.bak.2" in run.log
    assert sh(box, "cat ~/.bashrc.bak.2") == "mine again"
    assert "interactive.sh" in sh(box, "cat ~/.bashrc.bak"), "the first one kept"


def test_ref_and_setup_path(box, sh):
    url = make_repo(
        sh,
        box,
        {
            "tools/go.sh": "#!/bin/sh\necho custom > ~/ran\n",
            "install.sh": "#!/bin/sh\necho default > ~/ran\n",
        },
    )
    configure(box, url, ref="main", setup_path="tools/go.sh")
    assert materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW).status == "succeeded"
    assert sh(box, "cat ~/ran") == "custom"


def test_a_failing_script_is_recorded_and_visible(box, sh):
    configure(box, make_repo(sh, box, {"install.sh": "#!/bin/sh\necho about to fail\nexit 7\n"}))
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == DotfilesRun.Status.FAILED
    assert run.exit_code == 7
    assert "about to fail" in run.log
    assert [s["step"] for s in run.steps] == ["bash_profile", "repository", "overlay"]
    assert not sh(box, "cat ~/.spoon/env-hash 2>/dev/null || true"), (
        "a failure runs again next time"
    )


def test_output_that_comes_while_the_log_is_being_saved_is_kept(box, sh, monkeypatch):
    """Saves run in a thread while output goes on arriving: a slow save (a
    busy database) must not drop what came meanwhile."""
    slow_add = materialize.RunLog.add

    def add(self, text):
        time.sleep(0.05)  # a busy database: the fault this test makes
        slow_add(self, text)

    monkeypatch.setattr(materialize.RunLog, "add", add)
    count = "#!/bin/sh\nfor i in $(seq 1 300); do echo line-$i; sleep 0.002; done\n"
    configure(box, make_repo(sh, box, {"install.sh": count}, executable=["install.sh"]))
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    printed = [line for line in run.log.splitlines() if line.startswith("line-")]
    assert printed == [f"line-{i}" for i in range(1, 301)]


def test_a_hung_script_is_killed_at_the_limit(box, settings, sh):
    settings.SPOON_DOTFILES_TIMEOUT = 2
    configure(box, make_repo(sh, box, {"install.sh": "#!/bin/sh\necho hanging\nsleep 600\n"}))
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == DotfilesRun.Status.FAILED
    assert "ran longer than 2 s and was stopped" in run.log
    assert sh(box, "pgrep -f '^sleep 600' || true") == ""


def test_the_hash_skips_a_second_run_until_the_config_changes(box, sh):
    url = make_repo(sh, box, {"install.sh": "#!/bin/sh\necho run >> ~/runs\n"})
    configure(box, url)
    materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    second = materialize.apply(box, DotfilesRun.Trigger.BOX_START)
    assert {"step": "repository", "skipped": "unchanged"} in second.steps
    assert {"step": "overlay", "skipped": "unchanged"} in second.steps, "one exec, nothing new"
    assert sh(box, "cat ~/runs") == "run"
    configure(box, url, ref="main")
    materialize.apply(box, DotfilesRun.Trigger.BOX_START)
    assert sh(box, "cat ~/runs") == "run\nrun"


def test_apply_now_fetches_the_repository_s_latest_commit(box, sh):
    url = make_repo(sh, box, {"install.sh": "#!/bin/sh\necho one >> ~/runs\n"})
    configure(box, url)
    materialize.apply(box, DotfilesRun.Trigger.BOX_START)
    sh(box, "cd ~/src/dots && sed -i s/one/two/ install.sh && git commit -qam two")
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == "succeeded", run.log
    assert sh(box, "cat ~/runs") == "one\ntwo"


def test_the_overlay_wins_keeps_bytes_and_modes_and_forgets_deleted_files(box, sh):
    configure(box, make_repo(sh, box, {".vimrc": "from the repo\n"}))
    add_file(box, ".vimrc", b"from the overlay\n")
    binary = bytes(range(256)) * 4
    add_file(box, ".local/share/blob.bin", binary)
    add_file(box, "bin/hello", b"#!/bin/sh\necho hello\n", executable=True)
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == "succeeded", run.log
    assert sh(box, "cat ~/.vimrc") == "from the overlay"
    assert sh(box, "cat ~/.dotfiles/.vimrc") == "from the repo"
    assert commands.run(box, ["cat", ".local/share/blob.bin"]).output == binary
    assert sh(box, "~/bin/hello; stat -c '%a %U' ~/bin/hello ~/.vimrc") == (
        f"hello\n755 {box.username}\n644 {box.username}"
    )
    OverlayFile.objects.filter(user=box.user, path="bin/hello").delete()
    materialize.apply(box, DotfilesRun.Trigger.FILES_SAVED, files_only=True)
    assert sh(box, "test -e ~/bin/hello || echo gone") == "gone"


def test_bash_profile_sources_bashrc(box, sh):
    materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    add_file(box, ".bashrc", b"alias spoonhi='echo hi-from-alias'\n")
    materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert "bashrc" in sh(box, "cat ~/.bash_profile")
    assert sh(box, "bash -lic 'spoonhi' 2>/dev/null") == "hi-from-alias"


def test_a_planted_symlink_is_not_followed(box, sh):
    sh(box, "rm -f ~/.bashrc && ln -s /etc/passwd ~/.bashrc")
    add_file(box, ".bashrc", b"# mine\n")
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == "succeeded", run.log
    assert sh(box, "test -L ~/.bashrc && echo link || echo file") == "file"
    assert "root:x:0:0" in sh(box, "cat /etc/passwd"), "the target was not written"
    # A folder link: writes through it are the user's own, with the user's
    # rights (never root's), so a link to /etc gets nothing written there.
    sh(box, "rm -rf ~/.config && ln -s /etc ~/.config")
    add_file(box, ".config/evil", b"x")
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == "failed" and "Permission denied" in run.log
    assert sh(box, "test -e /etc/evil && echo written || echo safe") == "safe"
    sh(box, "mkdir -p /tmp/mine && rm ~/.config && ln -s /tmp/mine ~/.config")
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == "succeeded", run.log
    assert sh(box, "stat -c %U /tmp/mine/evil") == box.username


def test_a_box_start_applies_the_dotfiles(engine, make_user, settings, sh):
    settings.SPOON_DOTFILES_APPLY_ON_START = True
    user = make_user()
    f = OverlayFile(user=user, path=".started")
    f.content = b"yes\n"
    f.save()
    box = lifecycle.ensure_box(user)
    run = until(  # the apply runs in a thread of its own
        lambda: (
            DotfilesRun.objects.filter(user=user).exclude(status=DotfilesRun.Status.RUNNING).first()
        ),
        "no apply ended",
    )
    join_threads(f"dotfiles-{user.pk}")  # it lets go of the box before the test ends
    assert run.trigger == DotfilesRun.Trigger.BOX_START and run.status == "succeeded", run.log
    assert sh(box, "cat ~/.started") == "yes"


def test_secrets_are_in_the_environment_not_the_home_nor_the_logs(box, caplog, sh):
    secret = Secret(user=box.user, name="MY_API_TOKEN")
    secret.value = "tok-CANARY-42"
    secret.save()
    assert sh(box, "echo $MY_API_TOKEN") == "tok-CANARY-42"
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert sh(box, "grep -rl 'tok-CANARY-42' ~ 2>/dev/null || echo none") == "none"
    assert "tok-CANARY-42" not in run.log
    assert "tok-CANARY-42" not in caplog.text


def test_setup_arguments_are_separate_words_never_a_shell_line(box, sh):
    script = '#!/bin/sh\nfor a in "$@"; do echo "[$a]" >> ~/args; done\n'
    configure(box, make_repo(sh, box, {"bootstrap.sh": script}))
    DotfilesConfig.objects.filter(user=box.user).update(setup_args=["--force", "two words;id"])
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == "succeeded", run.log
    assert sh(box, "cat ~/args") == "[--force]\n[two words;id]"


def test_a_setup_that_asked_a_question_and_changed_nothing_is_a_warning(box, sh):
    script = '#!/bin/sh\nprintf "Overwrite your dotfiles? [y/N] "\nread answer || exit 0\n'
    configure(box, make_repo(sh, box, {"bootstrap.sh": script}))
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == DotfilesRun.Status.WARNING, run.log
    assert "spoon: warning: the setup changed nothing in your home" in run.log
    assert 'seems to have asked "Overwrite your dotfiles? [y/N]"' in run.log
    assert "its input is closed" in run.log


def test_a_setup_that_failed_at_a_question_says_why(box, sh):
    script = '#!/bin/sh\nprintf "Your name: "\nread name\n'
    configure(box, make_repo(sh, box, {"install.sh": script}))
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == DotfilesRun.Status.FAILED, run.log
    assert 'Your name: \nspoon: hint: it seems to have asked "Your name:"' in run.log


def test_a_repository_with_nothing_to_link_is_a_warning(box, sh):
    configure(box, make_repo(sh, box, {"README.md": "my dotfiles", "notes/todo": "x"}))
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == DotfilesRun.Status.WARNING, run.log
    assert "has no files starting with '.' to link" in run.log


def test_gnu_stow_packages_are_stowed(box, sh):
    sh(box, "printf '[user]\\n\\tname = mine\\n' > ~/.gitconfig")
    files = {
        "bash/.bash_aliases": "alias hi=true\n",
        "git/.gitconfig": "[user]\n",
        "nvim/.config/nvim/init.lua": "-- init\n",
        "README.md": "stow me",
    }
    configure(box, make_repo(sh, box, files))
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == "succeeded", run.log
    assert "GNU Stow packages: stow bash git nvim" in run.log
    assert sh(box, "cat ~/.bash_aliases ~/.config/nvim/init.lua") == "alias hi=true\n-- init"
    assert sh(box, "test -L ~/.config/nvim/init.lua && test ! -L ~/.config && echo files")
    assert sh(box, "git config -f ~/.gitconfig.bak user.name") == "mine", "the home's own file kept"
    assert "moved your ~/.gitconfig to ~/.gitconfig.bak" in run.log
    DotfilesConfig.objects.filter(user=box.user).update(ref="main")  # runs again
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert "moved your" not in run.log, "its own links are not in the way"


def test_an_rcm_repository_is_set_up_with_rcup(box, sh):
    files = {"rcrc": 'EXCLUDES="README*"\n', "bashrc_extra": "x\n", "gitconfig": "[core]\n",
             "config/git/ignore": "*.swp\n", "README.md": "rcm"}  # fmt: skip
    configure(box, make_repo(sh, box, files))
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == "succeeded", run.log
    assert "an rcm repository" in run.log
    assert sh(box, "readlink ~/.gitconfig") == f"{box.home}/.dotfiles/gitconfig"
    assert sh(box, "cat ~/.config/git/ignore") == "*.swp"
    assert sh(box, "test -e ~/.README.md || echo excluded") == "excluded"


def test_files_named_without_their_dot_are_an_rcm_layout(box, sh):
    files = {"zshrc": "# zsh\n", "vimrc": "set nu\n", "README.md": "x", "LICENSE": "x"}
    configure(box, make_repo(sh, box, files))
    DotfilesConfig.objects.filter(user=box.user).update(setup_args=["--force"])
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == "succeeded", run.log
    assert sh(box, "readlink ~/.vimrc") == f"{box.home}/.dotfiles/vimrc"
    assert sh(box, "ls -a ~ | grep -c -e README -e LICENSE || true") == "0", "not dotfiles"
    assert "the setup arguments (--force) are for a setup script" in run.log


def test_a_yadm_repository_is_cloned_by_yadm_and_bootstrapped(box, sh):
    sh(box, "printf '[user]\\n\\tname = mine\\n' > ~/.gitconfig")
    bootstrap = "#!/bin/sh\necho bootstrapped > ~/.yadm-ran\n"
    files = {".config/yadm/bootstrap": bootstrap, ".gitconfig": "[user]\n", ".vimrc": "set nu\n"}
    configure(box, make_repo(sh, box, files, executable=[".config/yadm/bootstrap"]))
    run = materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)
    assert run.status == "succeeded", run.log
    assert "a yadm repository" in run.log
    assert sh(box, "cat ~/.vimrc ~/.gitconfig ~/.yadm-ran") == "set nu\n[user]\nbootstrapped"
    assert sh(box, "git config -f ~/.gitconfig.bak user.name") == "mine"
    assert sh(box, "yadm status --porcelain | wc -l") == "0", "yadm tracks the home"


@pytest.mark.both_databases
def test_two_applies_from_two_processes_take_turns(box, sh):
    """Each process runs an apply at once; the second waits for the first."""
    path, wait = gate()
    install = f"#!/bin/sh\necho start >> ~/applies.log\n{wait}\necho end >> ~/applies.log\n"
    configure(box, make_repo(sh, box, {"install.sh": install}, executable=["install.sh"]))
    apply_now = (
        "from boxes.models import Box; from dotfiles import materialize; "
        f"run = materialize.apply(Box.objects.get(pk={box.pk}), 'apply now'); print(run.status)"
    )
    env = spoon_process_env(
        SPOON_DOTFILES_URL_SCHEMES="https,ssh,file",
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", apply_now],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    # The first is in its script and the second has asked for its turn: only
    # then does the script go on, so the two surely overlap.
    applies = Lease.objects.filter(box=box, kind=Lease.Kind.DOTFILES)
    begun = "cat ~/applies.log 2>/dev/null || true"
    until(
        lambda: applies.count() == 2 and "start" in sh(box, begun),
        "the two applies never both began",
        timeout=120,
    )
    open_gate(box, path)
    outputs = [p.communicate(timeout=180)[0] for p in processes]
    assert [out.split()[-1] for out in outputs] == ["succeeded", "succeeded"], outputs
    assert sh(box, "cat ~/applies.log").split() == ["start", "end", "start", "end"]
