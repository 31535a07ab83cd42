"""deploy/: the systemd units pass systemd-analyze verify, read their shared
drop-in, and run what exists; spoon-manage gives manage.py the services'
environment."""

import base64
import os
import secrets
import shutil
import subprocess

import pytest

from tests.support import REPO, bare_env

UNITS = REPO / "deploy/systemd"
CHECKED = [
    "spoon-web@8000.service",
    "spoon-web@8001.service",
    "spoon-reaper.service",
    "spoon-reap.service",
    "spoon-reap.timer",
    "spoon-ssh.service",
    "spoon.target",
]


def installed(tmp_path, drop_in_extra=""):
    """The units as an operator installs them, with this checkout standing in
    for /srv/spoon (verify checks that every ExecStart is there)."""
    folder = tmp_path / "units"
    shutil.copytree(UNITS, folder)
    for path in folder.rglob("*"):
        if path.is_file():
            path.write_text(path.read_text().replace("/srv/spoon", str(REPO)))
    drop_in = folder / "spoon-.service.d/spoon.conf"
    drop_in.write_text(drop_in.read_text() + drop_in_extra)
    return folder


def verify(folder, *units):
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        cwd=folder,
        env=bare_env(SYSTEMD_UNIT_PATH=f"{folder}:", SYSTEMD_LOG_COLOR="0"),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(autouse=True)
def systemd_analyze():
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing (Debian package: systemd)")


def test_every_unit_verifies_without_a_word(tmp_path):
    done = verify(installed(tmp_path), *CHECKED)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr


def test_the_services_read_the_shared_drop_in(tmp_path):
    """Proven by a wrong key in it: verify names it for the services only."""
    done = verify(installed(tmp_path, "NoSuchKey=1\n"), "spoon-web@8000.service")
    assert "Unknown key 'NoSuchKey'" in done.stderr


def test_a_missing_program_is_caught(tmp_path):
    folder = installed(tmp_path)
    unit = folder / "spoon-web@.service"
    unit.write_text(unit.read_text().replace(".venv/bin/daphne", ".venv/bin/no-daphne"))
    done = verify(folder, "spoon-web@8000.service")
    assert done.returncode != 0 and "no-daphne" in done.stderr


def test_the_units_run_the_commands_spoon_has():
    web = (UNITS / "spoon-web@.service").read_text()
    assert "daphne --proxy-headers -b 127.0.0.1 -p %i spoon.asgi:application" in web
    assert "reapboxes --every 60" in (UNITS / "spoon-reaper.service").read_text()
    target = (UNITS / "spoon.target").read_text()
    assert "spoon-web@8000.service spoon-web@8001.service spoon-reaper.service" in target
    assert "spoon-ssh.service" in target
    assert (
        "manage.py sshgateway --bind 0.0.0.0 --port 2222"
        in (UNITS / "spoon-ssh.service").read_text()
    )
    nginx = (REPO / "deploy/nginx/spoon.conf").read_text()
    assert "server 127.0.0.1:8000" in nginx and "server 127.0.0.1:8001" in nginx


def test_spoon_manage_gives_manage_py_the_environment_file(tmp_path):
    env_file = tmp_path / "spoon.env"
    env_file.write_text(
        (REPO / "deploy/spoon.env.example").read_text()
        + f"SPOON_DATA_DIR={tmp_path}\nDATABASE_URL=sqlite:///{tmp_path}/db.sqlite3\n"
        + f"SPOON_ENCRYPTION_KEYS={base64.b64encode(os.urandom(32)).decode()}\n"
        + f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
    )
    done = subprocess.run(
        [REPO / "deploy/spoon-manage", "shell", "-v", "0", "-c",
         "from django.conf import settings; print(settings.SPOON_METRICS_TOKEN, "
         "settings.ALLOWED_HOSTS, settings.SPOON_INSTANCE)"],
        env=bare_env(SPOON_ENV_FILE=str(env_file)), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["change-me", "['spoon.example.com']", "change-me"]


def test_spoon_manage_says_when_it_cannot_read_the_environment(tmp_path):
    done = subprocess.run(
        [REPO / "deploy/spoon-manage", "check"],
        env=bare_env(SPOON_ENV_FILE=str(tmp_path / "missing.env")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "cannot read" in done.stderr
