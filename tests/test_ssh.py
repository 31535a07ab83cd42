"""SSH into a box through the gateway (manage.py sshgateway), with Debian's
OpenSSH client on loopback: commands with their output apart and their exit
status, input, a TTY and its size, a login shell; refusals that say nothing
about who exists; a stopped box started on connect; a client that goes away
leaving nothing behind in the box; failed logins throttled."""

import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import pty
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
import uuid
from pathlib import Path

import pytest

from boxes import docker_engine
from tests.previews_support import run_app
from tests.support import REPO, SpoonServer, free_port
from tests.waits import until

# One gateway and one user for the module (its database is the gateway's own,
# never the test database): the module runs on one test process.
pytestmark = pytest.mark.xdist_group("ssh")


class Gateway:
    """manage.py sshgateway on a loopback port, with a Spoon data directory
    of its own, and users with keys made by ssh-keygen."""

    def __init__(self, folder: Path, **environment):
        self.folder = folder
        # its database and data directory; no daphne
        self.server = SpoonServer(folder, **environment)
        self.port = free_port()
        self.log = open(folder / "gateway.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "sshgateway", "--bind", "127.0.0.1",
             "--port", str(self.port)],
            cwd=REPO, env=self.server.env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        until(
            lambda: (
                b"serving SSH" in (folder / "gateway.log").read_bytes()
                or self.process.poll() is not None
            ),
            "the gateway did not start",
        )
        assert self.process.poll() is None, (folder / "gateway.log").read_text()

    def user(self) -> tuple[str, Path]:
        """A new user with a key: (their SSH login, the private key's path)."""
        username = f"s{uuid.uuid4().hex[:8]}"
        key = self.folder / username
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        self.server.create_user(username, "a-long-test-password")
        code = (
            "from django.contrib.auth import get_user_model; from ssh import accounts; "
            f"u = get_user_model().objects.get(username={username!r}); "
            f"accounts.add_key(u, 'test', {(key.with_suffix('.pub')).read_text()!r}); "
            "print(u.box.username)"
        )
        login = self.server.python(code).split()[-1]
        return login, key

    def shell(self, code: str) -> str:
        return self.server.python(code)

    def ssh_args(self, login: str, key: Path, *options: str) -> list[str]:
        return [  # options first: ssh keeps the first value of each
            "ssh", *options, "-p", str(self.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
            "-o", f"UserKnownHostsFile={self.folder / 'known_hosts'}", "-o", "LogLevel=ERROR",
            f"{login}@127.0.0.1",
        ]  # fmt: skip

    def ssh(self, login: str, key: Path, *command: str, options=(), **run):
        return subprocess.run(
            [*self.ssh_args(login, key, *options), *command],
            capture_output=True, timeout=120, **run,
        )  # fmt: skip

    def stop(self):
        self.server.close_shell()
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def gateway(engine, tmp_path_factory):
    running = Gateway(tmp_path_factory.mktemp("gateway"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def alice(gateway):
    login, key = gateway.user()
    assert gateway.ssh(login, key, "true").returncode == 0  # the box made, and running
    return login, key


def test_a_command_runs_in_the_box_with_its_output_apart_and_its_status(gateway, alice):
    done = gateway.ssh(*alice, "echo out; echo err >&2; whoami; pwd; exit 3")
    assert done.returncode == 3, done
    assert done.stdout.decode().split() == ["out", alice[0], f"/home/{alice[0]}"]
    assert done.stderr.decode() == "err\n"
    assert docker_engine.exec_run(f"spoon-box-{alice[0]}", ["true"])[0] == 0, "in their box"


def test_input_reaches_the_command_and_its_end_too(gateway, alice):
    data = os.urandom(3 << 20)
    done = gateway.ssh(*alice, "sha256sum; echo done", input=data)
    assert done.stdout.decode().split() == [hashlib.sha256(data).hexdigest(), "-", "done"]


def test_a_tty_has_the_clients_terminal_type(gateway, alice):
    done = gateway.ssh(
        *alice, "tty; echo $TERM; stty size", options=("-tt",),
        env={**os.environ, "TERM": "xterm-256color"},
    )  # fmt: skip
    lines = done.stdout.decode().split("\r\n")
    assert lines[0].startswith("/dev/pts/") and lines[1] == "xterm-256color", lines
    assert lines[2] == "24 80", "a client with no size of its own gets 80x24"


def test_a_login_shell_follows_the_window_as_it_changes(gateway, alice):
    """ssh on a real pseudo-terminal, as a person runs it: the shell starts at
    the terminal's size and hears of each change."""
    pid, terminal = pty.fork()
    if pid == 0:
        os.execvp("ssh", gateway.ssh_args(*alice, "-tt"))
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    seen = bytearray()

    def until(text: bytes, timeout=30):
        deadline = time.monotonic() + timeout
        while text not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            if select.select([terminal], [], [], 0.2)[0]:
                seen.extend(os.read(terminal, 65536))

    try:
        os.write(terminal, b"echo size $(stty size) $(shopt -q login_shell && echo login)\n")
        until(b"size 40 120 login")
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
        os.kill(pid, signal.SIGWINCH)
        # The new size reaches the box a moment later: ask until it has.
        deadline = time.monotonic() + 60
        while b"now 50 132" not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            os.write(terminal, b"echo now $(stty size)\n")
            with contextlib.suppress(AssertionError):
                until(b"now 50 132", timeout=2)
        os.write(terminal, b"exit 7\n")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 7
    finally:
        os.close(terminal)


def test_an_unknown_user_and_a_wrong_key_get_the_same_refusal(gateway, alice, tmp_path):
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", stranger], check=True)
    wrong_key = gateway.ssh(alice[0], stranger, "true")
    no_user = gateway.ssh("nobody-here", alice[1], "true")
    for refused in (wrong_key, no_user):
        assert refused.returncode == 255
        assert b"Permission denied (publickey)" in refused.stderr
    assert wrong_key.stderr.replace(alice[0].encode(), b"") == no_user.stderr.replace(
        b"nobody-here", b""
    )


def test_an_inactive_user_is_refused_at_once(gateway):
    login, key = gateway.user()
    assert gateway.ssh(login, key, "true").returncode == 0
    gateway.shell(
        "from boxes.models import Box; "
        f"u = Box.objects.get(username={login!r}).user; u.is_active = False; u.save()"
    )
    refused = gateway.ssh(login, key, "true")
    assert refused.returncode == 255 and b"Permission denied" in refused.stderr


def test_a_stopped_box_starts_on_connect_and_the_key_is_marked_used(gateway, alice):
    docker_engine.stop_container(f"spoon-box-{alice[0]}")
    done = gateway.ssh(*alice, "echo up")
    assert done.returncode == 0 and done.stdout == b"up\n", done
    used = gateway.shell(
        f"from ssh.models import SshKey; print(SshKey.objects.get(user__box__username="
        f"{alice[0]!r}).last_used_at is not None)"
    )
    assert used.split()[-1] == "True"


def test_a_client_that_goes_away_leaves_nothing_running_in_the_box(gateway, alice):
    marker = f"sleep {400 + int.from_bytes(os.urandom(1), 'big')}"
    client = subprocess.Popen(gateway.ssh_args(*alice) + [marker])
    box = f"spoon-box-{alice[0]}"

    def running() -> bool:
        return marker in docker_engine.exec_run(box, ["ps", "-eo", "args"])[1].decode()

    until(running, "the command never started", every=0.2)
    client.kill()
    until(lambda: not running(), "the command outlived its client", every=0.2)


def test_repeated_failures_from_one_address_are_refused_for_a_while(engine, tmp_path):
    throttled = Gateway(tmp_path)
    try:
        login, key = throttled.user()
        stranger = tmp_path / "stranger"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", stranger], check=True)
        for _ in range(21):
            assert throttled.ssh(login, stranger, "true").returncode == 255
        refused = throttled.ssh(login, key, "true")
        assert refused.returncode == 255, "even the right key, from this address, for now"
        assert "too many failed logins" in (tmp_path / "gateway.log").read_text()
    finally:
        throttled.stop()


class Forwarding:
    """ssh -N -L local:host:port running in the background."""

    def __init__(self, gateway: Gateway, login: str, key: Path, to: str):
        self.port = free_port()
        self.process = subprocess.Popen(
            gateway.ssh_args(login, key, "-N", "-L", f"127.0.0.1:{self.port}:{to}",
                             "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=INFO"),
            stderr=subprocess.PIPE,
        )  # fmt: skip

        def listens() -> bool:
            assert self.process.poll() is None, self.process.stderr.read()
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            return False

        until(listens, "the forward did not listen")

    def stop(self) -> str:
        self.process.terminate()
        try:
            return self.process.communicate(timeout=5)[1].decode()
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.communicate(timeout=5)[1].decode()


def test_a_forwarded_port_reaches_a_server_in_the_box(gateway, alice):
    run_app(alice[0], 8080)
    forward = Forwarding(gateway, *alice, "localhost:8080")
    try:
        connection = http.client.HTTPConnection("127.0.0.1", forward.port, timeout=30)
        for _ in range(3):  # keep-alive, over one forwarded connection
            connection.request("GET", "/headers")
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())["path"] == "/headers"
        body = os.urandom(5 << 20)
        connection.request("POST", "/upload", body=body)
        seen = json.loads(connection.getresponse().read())
        assert seen == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        connection.request("GET", "/big?mb=20")
        assert len(connection.getresponse().read()) == 20 << 20
        connection.close()
    finally:
        forward.stop()


def test_a_forward_to_nothing_or_elsewhere_is_refused_with_a_reason(gateway, alice):
    forward = Forwarding(gateway, *alice, "localhost:8999")
    try:
        with socket.create_connection(("127.0.0.1", forward.port), timeout=30) as sock:
            assert sock.recv(1) == b"", "closed: nothing to reach"
    finally:
        said = forward.stop()
    assert "nothing listens on 8999 in your box" in said, said

    elsewhere = Forwarding(gateway, *alice, "10.0.0.1:80")
    try:
        with socket.create_connection(("127.0.0.1", elsewhere.port), timeout=30) as sock:
            assert sock.recv(1) == b""
    finally:
        said = elsewhere.stop()
    assert "only ports of your box can be reached" in said, said


def ssh_command(gateway: Gateway, key: Path) -> list[str]:
    """The ssh that scp, sftp and rsync are told to use, as users set it up."""
    return [
        "-P", str(gateway.port), "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=accept-new",
        "-o", f"UserKnownHostsFile={gateway.folder / 'known_hosts'}", "-o", "LogLevel=ERROR",
    ]  # fmt: skip


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_scp_and_sftp_move_files_both_ways(gateway, alice, tmp_path):
    login, key = alice
    sent = tmp_path / "sent.bin"
    sent.write_bytes(os.urandom(20 << 20))
    for mode in ([], ["-O"]):  # the SFTP protocol (today's scp), and the old scp one
        target = f"{login}@127.0.0.1:moved{len(mode)}.bin"
        done = subprocess.run(["scp", *mode, *ssh_command(gateway, key), sent, target],
                              capture_output=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        back = tmp_path / f"back{len(mode)}.bin"
        done = subprocess.run(["scp", *mode, *ssh_command(gateway, key), target, back],
                              capture_output=True, timeout=120)  # fmt: skip
        assert done.returncode == 0 and digest(back) == digest(sent), done.stderr
    inside = gateway.ssh(login, key, "sha256sum moved0.bin moved1.bin").stdout.decode().split()
    assert inside[0] == inside[2] == digest(sent)

    batch = tmp_path / "batch"
    batch.write_text(f"mkdir sftp-dir\nput {sent} sftp-dir/x.bin\nls sftp-dir\n"
                     f"get sftp-dir/x.bin {tmp_path / 'got.bin'}\nrm sftp-dir/x.bin\n")  # fmt: skip
    done = subprocess.run(
        ["sftp", "-b", batch, *ssh_command(gateway, key), f"{login}@127.0.0.1"],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert b"sftp-dir/x.bin" in done.stdout and digest(tmp_path / "got.bin") == digest(sent)


def test_rsync_over_the_gateway(gateway, alice, tmp_path):
    login, key = alice
    source = tmp_path / "project"
    (source / "src").mkdir(parents=True)
    for n in range(50):
        (source / "src" / f"f{n}.txt").write_text(f"file {n}\n" * n)
    (source / "data.bin").write_bytes(os.urandom(3 << 20))
    ssh = " ".join(["ssh", *ssh_command(gateway, key)]).replace("-P", "-p", 1)
    target = f"{login}@127.0.0.1:project/"
    rsync = ["rsync", "-a", "--itemize-changes", "-e", ssh, f"{source}/", target]
    first = subprocess.run(rsync, capture_output=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count(b"<f+++++++++") == 51, first.stdout
    again = subprocess.run(rsync, capture_output=True, timeout=120)
    assert again.returncode == 0 and b"<f" not in again.stdout, "nothing changed, nothing sent"
    listed = gateway.ssh(login, key, "sha256sum project/data.bin; ls project/src | wc -l")
    assert listed.stdout.decode().split() == [digest(source / "data.bin"), "project/data.bin", "50"]


def test_a_transfer_cut_off_midway_leaves_no_process_in_the_box(gateway, alice, tmp_path):
    login, key = alice
    box = f"spoon-box-{login}"
    big = tmp_path / "big.bin"
    with open(big, "wb") as out:
        out.truncate(2 << 30)  # sparse: 2 GiB that take no disk here
    for client in (
        ["scp", *ssh_command(gateway, key), big, f"{login}@127.0.0.1:/tmp/cut.bin"],
        ["scp", "-O", *ssh_command(gateway, key), big, f"{login}@127.0.0.1:/tmp/cut.bin"],
    ):
        transfer = subprocess.Popen(client, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        until(
            lambda transfer=transfer: (
                transfer.poll() is not None
                or "cut.bin" in docker_engine.exec_run(box, ["ls", "/tmp"])[1].decode()
            ),
            "the transfer never began",
        )
        assert transfer.poll() is None, transfer.stderr.read()
        transfer.kill()
        transfer.wait()
        until(
            lambda: not docker_engine.exec_run(box, ["pgrep", "-a", "sftp-server|scp"])[1],
            "sftp-server or scp left behind",
            every=0.2,
        )
        docker_engine.exec_run(box, ["rm", "-f", "/tmp/cut.bin"])


EDITOR = """
import asyncio, sys, asyncssh

async def main(port, login, key, known_hosts):
    async with asyncssh.connect("127.0.0.1", port, username=login, client_keys=[key],
                                known_hosts=known_hosts) as conn:
        # what an editor's remote server needs: a shell command, sftp and forwarded ports
        done = await conn.run("uname -s; echo $HOME", check=True)
        print(done.stdout.split())
        async with conn.start_sftp_client() as sftp:
            await sftp.makedirs(".editor-server/bin", exist_ok=True)
            async with sftp.open(".editor-server/bin/server.js", "w") as f:
                await f.write("console.log('the editor server')")
            print(await sftp.listdir(".editor-server/bin"))
        answers = []
        for _ in range(3):
            reader, writer = await conn.open_connection("localhost", 8080)
            writer.write(b"GET /headers HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
            answers.append((await reader.read()).split(b"\\r\\n")[0].decode())
            writer.close()
        print(answers)

asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]))
"""


def test_what_an_editor_does_over_ssh_works_on_one_connection(gateway, alice):
    login, key = alice
    run_app(login, 8080)
    gateway.ssh(login, key, "true")  # the gateway's host key, known as OpenSSH keeps it
    known = gateway.folder / "known_hosts"
    done = subprocess.run(
        [sys.executable, "-c", EDITOR, str(gateway.port), login, str(key), str(known)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == str(["Linux", f"/home/{login}"])
    assert "'server.js'" in lines[1]
    assert lines[2] == str(["HTTP/1.1 200 OK"] * 3)


def test_a_login_can_name_a_workspace_to_start_in(gateway, alice):
    login, key = alice
    gateway.ssh(login, key, "mkdir -p ~/Code/myapp/feature/x && touch ~/Code/myapp/feature/x/here")
    done = gateway.ssh(f"{login}+myapp/feature/x", key, "pwd; ls")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().split() == [f"/home/{login}/Code/myapp/feature/x", "here"]
    missing = gateway.ssh(f"{login}+myapp/nope", key, "pwd")
    assert missing.returncode != 0
    assert f"no such directory: /home/{login}/Code/myapp/nope" in missing.stderr.decode()
    for bad in ("myapp", "../../etc", "myapp/../../x"):
        refused = gateway.ssh(f"{login}+{bad}", key, "pwd")
        assert refused.returncode == 255 and b"names no workspace" in refused.stderr, bad


def test_staff_keys_open_only_their_own_box(gateway, alice):
    staff_login, staff_key = gateway.user()
    gateway.shell(
        "from boxes.models import Box; "
        f"u = Box.objects.get(username={staff_login!r}).user; "
        "u.is_staff = u.is_superuser = True; u.save()"
    )
    refused = gateway.ssh(alice[0], staff_key, "true")
    assert refused.returncode == 255 and b"Permission denied (publickey)" in refused.stderr
    assert gateway.ssh(staff_login, staff_key, "whoami").stdout.decode().strip() == staff_login


def test_agent_forwarding_lets_the_box_sign_with_the_clients_key(gateway, alice, tmp_path):
    """What `git push` over SSH from the box needs: ssh-add -l sees the key
    on the user's machine, and a signature made in the box with it checks."""
    login, key = alice
    agent_key = tmp_path / "agent_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "on-my-laptop",
                    "-f", agent_key], check=True)  # fmt: skip
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", socket_path], stdout=subprocess.DEVNULL)
    try:
        until(socket_path.exists, "the agent never made its socket", every=0.05)
        env = {**os.environ, "SSH_AUTH_SOCK": str(socket_path)}
        subprocess.run(["ssh-add", "-q", agent_key], env=env, check=True)
        public = agent_key.with_suffix(".pub").read_text()
        script = (
            f"ssh-add -l; printf %s {shlex.quote(public)} > /tmp/agent.pub; "
            "echo 'signed in the box' | ssh-keygen -Y sign -f /tmp/agent.pub -n test -q"
        )
        done = gateway.ssh(login, key, script, options=("-A",), env=env)
        assert done.returncode == 0, done.stderr
        listed, _, signature = done.stdout.decode().partition("-----BEGIN SSH SIGNATURE-----")
        assert "on-my-laptop (ED25519)" in listed
        (tmp_path / "sig").write_text("-----BEGIN SSH SIGNATURE-----" + signature)
        checked = subprocess.run(
            ["ssh-keygen", "-Y", "check-novalidate", "-n", "test", "-s", tmp_path / "sig",
             "-f", agent_key.with_suffix(".pub")],
            input=b"signed in the box\n", capture_output=True,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr

        without = gateway.ssh(login, key, "echo ${SSH_AUTH_SOCK:-none}; ls /tmp", env=env)
        assert without.stdout.decode().split()[0] == "none", "no -A, no agent"
        assert "spoon-agent-" not in without.stdout.decode(), "the socket went with its session"
    finally:
        agent.terminate()
        agent.wait()


@pytest.mark.slow
def test_session_traffic_is_activity_on_the_box(engine, tmp_path):
    watched = Gateway(tmp_path, SPOON_ACTIVITY_WRITE_SECONDS="0")
    try:
        login, key = watched.user()
        assert watched.ssh(login, key, "true").returncode == 0  # the box made
        started = time.time()
        session = subprocess.Popen(
            watched.ssh_args(login, key) + ["sleep 1; echo typed; sleep 8"],
            stdout=subprocess.PIPE,
        )
        assert session.stdout.readline() == b"typed\n"
        stamp = (
            f"from boxes.models import Box; "
            f"print(Box.objects.get(username={login!r}).last_activity_at.timestamp())"
        )
        until(  # written in a thread beside the session
            lambda: float(watched.shell(stamp).split()[-1]) > started + 0.5,
            "not written as the output came",
            every=0.2,
        )
        assert session.wait(timeout=30) == 0
    finally:
        watched.stop()


def test_host_keys_are_made_once_private_and_kept(settings, tmp_path):
    from ssh import gateway as ssh_gateway

    settings.DATA_DIR = tmp_path
    made = ssh_gateway.host_keys()
    first = [Path(path).read_bytes() for path in made]
    assert ssh_gateway.host_keys() == made
    assert [Path(path).read_bytes() for path in made] == first, "the same keys next time"
    assert {oct(Path(path).stat().st_mode & 0o777) for path in made} == {"0o600"}
    assert oct((tmp_path / "ssh").stat().st_mode & 0o777) == "0o700"
