"""Encryption at rest, key handling and the validation rules of dotfiles and secrets."""

import base64
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection

from dotfiles import encryption, validation
from dotfiles.models import DotfilesConfig, OverlayFile, Secret
from tests.support import REPO, bare_env

pytestmark = pytest.mark.django_db(transaction=True)


def new_key() -> bytes:
    return os.urandom(32)


def test_round_trip_and_binary_kept_byte_for_byte():
    data = bytes(range(256)) * 10
    stored = encryption.encrypt(data, b"spoon/file/1/.x")
    assert stored.startswith(encryption.MAGIC) and data not in stored
    assert encryption.decrypt(stored, b"spoon/file/1/.x") == data


@pytest.mark.parametrize("where", [5, 20, -1])
def test_tampering_is_detected(where):
    stored = bytearray(encryption.encrypt(b"secret text", b"ad"))
    stored[where] ^= 0x01
    with pytest.raises(encryption.DecryptionError):
        encryption.decrypt(bytes(stored), b"ad")


@pytest.mark.both_databases
def test_a_row_copied_to_another_user_or_path_fails_with_a_clear_error(make_user):
    alice, bob = make_user(), make_user()
    original = OverlayFile(user=alice, path=".bashrc")
    original.content = b"alias ll='ls -l'\n"
    original.save()
    for user, path in ((bob, ".bashrc"), (alice, ".zshrc")):
        copy = OverlayFile.objects.create(
            user=user, path=path, encrypted_content=original.encrypted_content, size=1
        )
        with pytest.raises(encryption.DecryptionError, match="another user or path"):
            copy.content  # noqa: B018


@pytest.mark.both_databases
def test_the_database_never_holds_plaintext(make_user):
    user = make_user()
    note = OverlayFile(user=user, path=".plainly-visible")
    note.content = b"PLAINTEXT-CANARY-1234"
    note.save()
    secret = Secret(user=user, name="API_TOKEN")
    secret.value = "SECRET-CANARY-5678"
    secret.save()
    raw = database_bytes()
    assert b"API_TOKEN" in raw, "the right database files were read"
    for canary in (b"PLAINTEXT-CANARY-1234", b"SECRET-CANARY-5678"):
        assert canary not in raw


def database_bytes() -> bytes:
    """Every byte the database keeps on disk for this test: SQLite's file and
    its write-ahead log, or PostgreSQL's table files (after a checkpoint)
    and its write-ahead log."""
    if connection.vendor == "sqlite":
        name = connection.settings_dict["NAME"]
        connection.close()
        paths = [Path(name), Path(name + "-wal")]
    else:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
            cursor.execute("SHOW data_directory")
            data = Path(cursor.fetchone()[0])
            cursor.execute(
                "SELECT pg_relation_filepath(oid) FROM pg_class WHERE relkind IN ('r', 't')"
                " AND pg_relation_filepath(oid) IS NOT NULL"
            )
            paths = [data / row[0] for row in cursor.fetchall()]
        paths += sorted((data / "pg_wal").glob("0*"))
    # Read by another process: closing a file this process opened drops every
    # POSIX lock it holds on it, SQLite's included, and other connections of
    # this process (threads') then lose their database ("disk I/O error").
    return b"".join(
        subprocess.run(["cat", path], capture_output=True, check=True).stdout
        for path in paths
        if path.exists()
    )


@pytest.mark.both_databases
def test_rotation_moves_everything_to_the_first_key(make_user, settings):
    old = settings.SPOON_ENCRYPTION_KEYS[0]
    user = make_user()
    file = OverlayFile(user=user, path=".vimrc")
    file.content = b"set number\n"
    file.save()
    config = DotfilesConfig(user=user)
    config.token, config.deploy_key = "tok-ROTATED", "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    config.save()
    settings.SPOON_ENCRYPTION_KEYS = [new_key(), old]
    assert not encryption.is_current(OverlayFile.objects.get(pk=file.pk).encrypted_content)
    out = io.StringIO()
    call_command("rotatekeys", stdout=out)
    assert "1 files, 0 secrets and 2 repository credentials re-encrypted" in out.getvalue()
    settings.SPOON_ENCRYPTION_KEYS = settings.SPOON_ENCRYPTION_KEYS[:1]
    assert OverlayFile.objects.get(pk=file.pk).content == b"set number\n"
    config.refresh_from_db()
    assert config.token == "tok-ROTATED"
    assert config.deploy_key == "-----BEGIN OPENSSH PRIVATE KEY-----\n"


def test_a_value_under_a_removed_key_names_the_key(settings):
    stored = encryption.encrypt(b"x", b"ad")
    settings.SPOON_ENCRYPTION_KEYS = [new_key()]
    with pytest.raises(encryption.DecryptionError, match="not in SPOON_ENCRYPTION_KEYS"):
        encryption.decrypt(stored, b"ad")


PROBE = (
    "import django; django.setup(); from django.conf import settings; "
    "print(len(settings.SPOON_ENCRYPTION_KEYS))"
)


def start(env):
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True
    )


def test_development_makes_and_keeps_a_key(tmp_path):
    first = start(bare_env(SPOON_DATA_DIR=str(tmp_path)))
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "encryption_key"
    assert len(base64.b64decode(key_file.read_text())) == 32
    assert key_file.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("keys", ["not-base64!", base64.b64encode(b"short").decode(), "a,b"])
def test_a_malformed_key_stops_the_app_with_how_to_make_one(tmp_path, keys):
    result = start(bare_env(SPOON_DATA_DIR=str(tmp_path), SPOON_ENCRYPTION_KEYS=keys))
    assert result.returncode != 0
    assert "is not base64 of 32 bytes. Make one with:" in result.stderr


def test_production_never_makes_a_key(tmp_path):
    result = start(
        bare_env(SPOON_DATA_DIR=str(tmp_path), SPOON_PRODUCTION="true", SECRET_KEY="k" * 60)
    )
    assert result.returncode != 0
    assert "needs SPOON_ENCRYPTION_KEYS" in result.stderr
    assert not (tmp_path / "encryption_key").exists()


@pytest.mark.parametrize(
    "path",
    ["", "/etc/passwd", "~/.bashrc", "a//b", "a/", "../x", "a/../b", "./a", "a\0b", "a\nb",
     ".bashrc\n", "a\rb", "a\x1bb",
     ".spoon/env-hash", "-rf", "a/-b", "x" * 300, "/".join(["d"] * 20)],
)  # fmt: skip
def test_bad_overlay_paths(path):
    with pytest.raises(ValidationError):
        validation.overlay_path(path)


@pytest.mark.parametrize(
    "path", [".bashrc", ".config/nvim/init.lua", "bin/tool", "notes.md", ".spoonrc"]
)
def test_good_overlay_paths(path):
    assert validation.overlay_path(path) == path


@pytest.mark.parametrize(
    "url, ok",
    [("https://example.com/me/dotfiles.git", True), ("", True),
     ("http://example.com/d.git", False), ("git@example.com:me/d.git", True),
     ("ssh://git@example.com:2222/me/d.git", True),
     ("https://me:token@example.com/d.git", False), ("https://token@example.com/d.git", False),
     ("-https://x", False), ("ext::sh -c id", False), ("file:///etc", False),
     ("https:///x", False)],
)  # fmt: skip
def test_repo_urls(url, ok):
    if ok:
        validation.repo_url(url)
    else:
        with pytest.raises(ValidationError):
            validation.repo_url(url)


@pytest.mark.parametrize(
    "ref, ok",
    [("main", True), ("v1.2", True), ("feature/x", True), ("", True),
     ("-b", False), ("a..b", False), ("x.lock", False), ("a b", False)],
)  # fmt: skip
def test_refs(ref, ok):
    if ok:
        validation.ref(ref)
    else:
        with pytest.raises(ValidationError):
            validation.ref(ref)


@pytest.mark.parametrize(
    "path, ok", [("install.sh", True), ("scripts/setup", True), ("", True),
                 ("/bin/sh", False), ("../x", False), ("-x", False)],
)  # fmt: skip
def test_setup_paths(path, ok):
    if ok:
        validation.setup_path(path)
    else:
        with pytest.raises(ValidationError):
            validation.setup_path(path)


@pytest.mark.parametrize(
    "name, ok",
    [("OPENAI_API_KEY", True), ("_x", True), ("a1", True), ("1A", False), ("A-B", False),
     ("", False), ("PATH", False), ("HOME", False), ("SPOON_X", False), ("A B", False)],
)  # fmt: skip
def test_secret_names(name, ok):
    if ok:
        validation.secret_name(name)
    else:
        with pytest.raises(ValidationError):
            validation.secret_name(name)
