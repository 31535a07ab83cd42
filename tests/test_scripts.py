"""The README's commands and the engine script, run as a user would run them."""

import http.cookiejar
import os
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request

from tests.support import REPO, free_port, one_builder, wait_for_port
from tests.waits import read_until


def test_ensure_docker_is_quick_when_the_engine_answers(engine):
    started = time.monotonic()
    result = subprocess.run([REPO / "scripts/ensure-docker"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30, "not the minute it waits for an engine to start"


def test_ensure_docker_never_starts_a_local_engine_for_a_remote_host():
    result = subprocess.run(
        [REPO / "scripts/ensure-docker"],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert result.returncode == 1
    assert (
        "no Docker Engine answers at DOCKER_HOST=unix:///nonexistent/docker.sock" in result.stderr
    )


def test_run_command_serves_spoon_and_its_first_user_logs_in(engine, tmp_path):
    port, ssh_port = free_port(), free_port()
    process = None
    try:
        # It builds the stack images when they are stale: not beside another test doing so.
        with one_builder():
            process = subprocess.Popen(
                [REPO / "scripts/run"],
                # As the README runs it: SQLite and the in-memory layer, whatever this run uses.
                env={
                    **without_services(os.environ),
                    "SPOON_DATA_DIR": str(tmp_path),
                    "SPOON_PORT": str(port),
                    "SPOON_SSH_PORT": str(ssh_port),
                },
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            said = read_until(process, lambda line: line.startswith("Spoon: open"), timeout=900)
        text = "".join(said)
        assert f"http://localhost:{port}/" in text, "localhost: previews sign in there too"
        username, password = re.search(r"First user: (\S+)  password: (\S+)", text).groups()
        wait_for_port(port)
        assert log_in(f"http://127.0.0.1:{port}", username, password) == "/"
        wait_for_port(ssh_port)  # the SSH gateway beside it
        assert f"SSH on port {ssh_port}" in text
    finally:
        if process:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
    assert not any(password in text_of(p) for p in files_under(tmp_path)), (
        "the first password is shown, never stored"
    )


def without_services(env) -> dict:
    return {k: v for k, v in env.items() if k not in ("DATABASE_URL", "REDIS_URL")}


def log_in(base, username, password) -> str:
    """Log in like a browser would; returns the path the login redirected to."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(base + "/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    data = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token}
    ).encode()
    request = urllib.request.Request(base + "/login/", data=data, headers={"Referer": base})
    with opener.open(request) as response:
        assert "/login/" not in response.url, "login was refused"
        return urllib.parse.urlparse(response.url).path


def files_under(path):
    return [p for p in path.rglob("*") if p.is_file()]


def text_of(path) -> str:
    """What a file holds; "" for one gone since it was listed (SQLite's -shm
    and -wal go as the stopping daphne closes its database)."""
    try:
        return path.read_text(errors="ignore")
    except FileNotFoundError:
        return ""
