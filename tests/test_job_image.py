"""The job image: the promised tools, the entrypoint's user, and a quick stop."""

import time
import uuid

import pytest

from boxes import docker_engine
from tests.waits import until

TOOLS = {
    "bash": ["bash", "--version"],
    "git": ["git", "--version"],
    "tmux": ["tmux", "-V"],
    "curl": ["curl", "--version"],
    "less": ["less", "--version"],
    "neovim": ["nvim", "--version"],
    "ripgrep": ["rg", "--version"],
    "fd-find": ["fd", "--version"],
    "fzf": ["fzf", "--version"],
    "bat": ["bat", "--version"],
    "zoxide": ["zoxide", "--version"],
    "jq": ["jq", "--version"],
    "openssh-client": ["ssh", "-V"],
    "cc": ["cc", "--version"],
    "make": ["make", "--version"],
    "ps": ["ps", "--version"],
    "python3": ["python3", "--version"],
    "node": ["node", "--version"],
    "npm": ["npm", "--version"],
    "codex": ["codex", "--version"],
    "gh": ["gh", "--version"],
    "exa": ["exa", "--version"],
    "htop": ["htop", "--version"],
    "btop": ["btop", "--version"],
    "python": ["python", "--version"],
    "stow": ["stow", "--version"],
    "rcm": ["rcup", "-V"],
    "yadm": ["yadm", "version"],
    "opencode": ["opencode", "--version"],
    "rsync": ["rsync", "--version"],  # rsync over the SSH gateway
    "sftp-server": ["/usr/lib/openssh/sftp-server", "-h", "2>&1;", "test", "$?", "=", "1"],
    "socat": ["socat", "-V"],
}


def in_login_shell(box, command, user="alice"):
    return docker_engine.exec_run(box, ["bash", "-lc", command], user=user)


@pytest.mark.parametrize("tool", TOOLS)
def test_promised_tool_answers_version(module_box, tool):
    code, output = in_login_shell(module_box, " ".join(TOOLS[tool]))
    assert code == 0, output.decode(errors="replace")
    assert output.strip()


def test_ca_certificates_and_utf8(module_box):
    code, output = in_login_shell(
        module_box, "test -s /etc/ssl/certs/ca-certificates.crt && echo $LANG && printf 'é' | wc -m"
    )
    assert code == 0
    assert output.split() == [b"C.UTF-8", b"1"]


def test_entrypoint_creates_non_root_user_who_owns_home(start_box):
    box = start_box(user="carol", uid=1234)
    code, output = in_login_shell(
        box, 'id -u; id -gn; echo $HOME; stat -c "%u %a" ~; ls -A ~', "carol"
    )
    assert code == 0, output
    lines = output.decode().split("\n")
    assert lines[0] == "1234"
    assert lines[1] == "carol"
    assert lines[2] == "/home/carol"
    assert lines[3] == "1234 750"
    assert ".bashrc" in lines[4:], "an empty home gets /etc/skel"


def test_home_keeps_its_files_across_containers(start_box):
    home = f"spoon-test-shared-home-{uuid.uuid4().hex[:8]}"
    first = start_box(home_volume=home)
    assert in_login_shell(first, "echo kept > ~/note")[0] == 0
    docker_engine.remove_container(first)
    second = start_box(home_volume=home)
    code, output = in_login_shell(second, "cat ~/note; stat -c %u ~/note")
    assert (code, output.split()) == (0, [b"kept", b"1000"])


def test_entrypoint_refuses_bad_user_names(engine):
    from django.conf import settings

    from tests.support import TEST_LABEL

    name = f"spoon-test-badname-{uuid.uuid4().hex[:8]}"
    try:
        docker_engine.run_container(
            settings.SPOON_JOB_IMAGE,
            name=name,
            labels={TEST_LABEL: settings.SPOON_INSTANCE},
            environment={"SPOON_USER": "../root", "SPOON_UID": "1000"},
        )
        until(lambda: not docker_engine.inspect_container(name)["State"]["Running"], timeout=30)
        state = docker_engine.inspect_container(name)["State"]
        assert state["ExitCode"] == 64
        assert "not a valid user name" in docker_engine.container_logs(name)
    finally:
        docker_engine.remove_container(name)


def test_profile_works_with_empty_home_and_points_installs_at_home(start_box):
    box = start_box()
    code, output = in_login_shell(
        box, "rm -rf ~/.bashrc ~/.profile; bash -lic 'echo $NPM_CONFIG_PREFIX; type ll' 2>&1"
    )
    assert code == 0, output
    assert b"/home/alice/.local" in output
    assert b"ll is aliased" in output


def test_tmux_starts_login_shells(module_box):
    code, output = in_login_shell(
        module_box,
        "tmux new -d -s t -x 80 -y 24 && tmux send-keys -t t "
        "'shopt -q login_shell && echo LOGIN-YES' Enter && "
        # Waits for the line itself, however long a busy machine takes.
        "for i in $(seq 300); do tmux capture-pane -p -t t | grep -qx LOGIN-YES && break; "
        "sleep 0.1; done; tmux capture-pane -p -t t | grep -cx LOGIN-YES",
    )
    assert code == 0, output
    assert output.split()[-1] == b"1", "the shell in a tmux window is a login shell"


def test_box_stops_at_once_on_sigterm(start_box):
    box = start_box()
    started = time.monotonic()
    docker_engine.stop_container(box, timeout=30)
    elapsed = time.monotonic() - started
    # Under two seconds on an idle machine; what matters is that it ends on
    # SIGTERM (0 or 143), not killed at the timeout (137).
    assert elapsed < 10, f"docker stop took {elapsed:.2f} s"
    assert docker_engine.inspect_container(box)["State"]["ExitCode"] in (0, 143)


def in_interactive_shell(box, command, user="alice"):
    return docker_engine.exec_run(box, ["bash", "-lic", command], user=user)


PS1_AFTER = 'false; __spoon_prompt; printf "%s" "$PS1"'


def test_the_prompt_shows_status_workspace_branch_and_state(module_box):
    box = module_box
    made = in_login_shell(
        box,
        "mkdir -p ~/Code/proj/main && cd ~/Code/proj/main && git init -q -b main && "
        "git config user.email t@t && git config user.name t && echo a > a && git add a && "
        "git commit -qm a && echo b >> a",
    )
    assert made[0] == 0, made[1]
    code, output = in_interactive_shell(box, f"cd ~/Code/proj/main; {PS1_AFTER}")
    prompt = output.decode()
    assert "✘ 1" in prompt, "the last command's exit status"
    assert " proj/main" in prompt, "the workspace"
    assert " main*" in prompt, "the branch, and that it has changes"
    assert "\\u" in prompt and prompt.endswith("\\n$ ")
    assert "exa --group-directories-first" in in_interactive_shell(box, "alias ls")[1].decode()


def test_a_users_own_bashrc_wins(start_box):
    box = start_box()
    in_login_shell(box, "echo 'PS1=\"mine> \"; PROMPT_COMMAND=' >> ~/.bashrc")
    code, output = in_interactive_shell(box, 'printf "%s" "$PS1"')
    assert output.decode().endswith("mine> ")
