"""Settings come from the environment only, and run with none set."""

import base64
import json
import subprocess
import sys

from tests.support import REPO, bare_env, manage

PROBE = """
import json, django
from django.conf import settings
django.setup()
db = settings.DATABASES["default"]
print(json.dumps({
    "debug": settings.DEBUG,
    "db_engine": db["ENGINE"], "db_name": str(db["NAME"]),
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "layer_config": settings.CHANNEL_LAYERS["default"].get("CONFIG"),
    "secret_key": settings.SECRET_KEY,
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "data_dir": str(settings.DATA_DIR),
}))
"""


def probe(env):
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_settings_load_with_no_variables():
    first = probe(bare_env())
    assert first["debug"] is False
    assert first["data_dir"] == str(REPO / "data")
    assert first["db_engine"] == "django.db.backends.sqlite3"
    assert first["db_name"] == str(REPO / "data" / "db.sqlite3")
    assert first["layer"] == "channels.layers.InMemoryChannelLayer"
    assert {"localhost", "127.0.0.1"} <= set(first["allowed_hosts"])
    assert len(first["secret_key"]) >= 50
    key_file = REPO / "data" / "secret_key"
    assert key_file.stat().st_mode & 0o077 == 0, "the kept secret key must be private"
    assert probe(bare_env())["secret_key"] == first["secret_key"], "the key is kept"


def test_database_and_redis_urls_are_honoured(tmp_path):
    found = probe(
        bare_env(
            SPOON_DATA_DIR=str(tmp_path),
            DATABASE_URL="postgres://spoon:pw@127.0.0.1:5432/spoon",
            REDIS_URL="redis://127.0.0.1:6379/0",
        )
    )
    assert found["db_engine"] == "django.db.backends.postgresql"
    assert found["db_name"] == "spoon"
    assert found["layer"] == "channels_redis.core.RedisChannelLayer"
    assert found["layer_config"] == {
        "hosts": [{"address": "redis://127.0.0.1:6379/0", "socket_timeout": None}]
    }


def test_development_generates_no_key_when_one_is_given(tmp_path):
    found = probe(bare_env(SPOON_DATA_DIR=str(tmp_path), SECRET_KEY="k" * 60))
    assert found["secret_key"] == "k" * 60
    assert not (tmp_path / "secret_key").exists()


def refusal(env) -> str:
    """What the settings say as they refuse to load with env."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    return result.stderr


def test_production_refuses_to_start_without_secret_key(tmp_path):
    said = refusal(bare_env(SPOON_DATA_DIR=str(tmp_path), SPOON_PRODUCTION="true"))
    assert "SPOON_PRODUCTION=true needs SECRET_KEY" in said
    assert not (tmp_path / "secret_key").exists()


def test_production_refuses_a_placeholder_secret_key(tmp_path):
    env = bare_env(SPOON_DATA_DIR=str(tmp_path), SPOON_PRODUCTION="true", SECRET_KEY="change-me")
    assert "SECRET_KEY is too short for production" in refusal(env)


def test_an_egress_allowance_spoon_does_not_know_is_refused(tmp_path):
    env = bare_env(SPOON_DATA_DIR=str(tmp_path), SPOON_BOX_EGRESS="host,everything")
    assert "SPOON_BOX_EGRESS='host,everything': list only host and link-local." in refusal(env)


def test_production_passes_check_deploy(tmp_path):
    env = bare_env(
        SPOON_DATA_DIR=str(tmp_path),
        SPOON_PRODUCTION="true",
        SECRET_KEY="a-long-random-production-key-7f3c9b2e1d4a6f8e0c5b7a9d2f4e6c8a0b1d3f5",
        SPOON_ENCRYPTION_KEYS=base64.b64encode(bytes(range(32))).decode(),
        ALLOWED_HOSTS="spoon.example.test",
    )
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout

    # __Host- cookies: a preview host under Spoon's domain cannot toss them
    # (a browser takes them only Secure, for the path /, without a domain).
    names = (
        "SESSION_COOKIE_NAME", "CSRF_COOKIE_NAME", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_DOMAIN", "CSRF_COOKIE_DOMAIN", "SESSION_COOKIE_PATH", "CSRF_COOKIE_PATH",
    )  # fmt: skip
    read = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps([getattr(settings, name) for name in {names!r}]))"
    )
    cookies = subprocess.run(
        [sys.executable, "-c", read], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert json.loads(cookies.stdout) == [
        "__Host-sessionid", "__Host-csrftoken", True, True, None, None, "/", "/",
    ], cookies.stderr  # fmt: skip
