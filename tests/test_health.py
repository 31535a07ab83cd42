"""/healthz and `manage.py checkdocker` tell whether boxes can start, and how to fix it."""

import os

import pytest
from django.test import override_settings

from tests.support import SpoonServer, manage

MISSING_SOCKET = "unix:///nonexistent/docker.sock"
pytestmark = pytest.mark.django_db


@pytest.fixture
def client(client, make_user):
    """Staff: they see what is wrong, not only whether something is."""
    client.force_login(make_user(is_staff=True))
    return client


def test_anyone_else_learns_only_whether_it_is_ok(engine, make_user, settings):
    from django.test import Client

    assert Client().get("/healthz").json() == {"ok": True}
    user = Client()
    user.force_login(make_user())
    assert user.get("/healthz").json() == {"ok": True}
    settings.SPOON_METRICS_TOKEN = "a-token-for-prometheus"
    with_token = Client(headers={"Authorization": "Bearer a-token-for-prometheus"})
    assert with_token.get("/healthz").json()["docker"]["reachable"] is True
    with override_settings(SPOON_JOB_IMAGE="spoon-test-missing:none"):
        down = Client().get("/healthz")
    assert down.status_code == 503 and down.json() == {"ok": False}


@pytest.mark.both_databases
def test_healthz_ok(client, engine, settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "docker": {
            "reachable": True,
            "version": engine,
            "image": settings.SPOON_JOB_IMAGE,
            "image_present": True,
            "error": None,
        },
        "database": {"ok": True, "error": None},
        "channel_layer": {"ok": True, "backend": layer_backend(settings), "error": None},
    }
    assert "no-cache" in response["Cache-Control"]


def test_healthz_reports_the_redis_channel_layer(client, engine, settings, redis_url):
    from spoon.settings import redis_channel_layers

    settings.CHANNEL_LAYERS = redis_channel_layers(redis_url)
    body = client.get("/healthz").json()
    assert body["channel_layer"] == {"ok": True, "backend": "RedisChannelLayer", "error": None}
    settings.CHANNEL_LAYERS = redis_channel_layers("redis://127.0.0.1:1/0")  # nothing there
    response = client.get("/healthz")
    assert response.status_code == 503
    error = response.json()["channel_layer"]["error"]
    assert error.startswith("The channel layer (RedisChannelLayer) does not answer")
    assert "check REDIS_URL and that Redis runs" in error


@override_settings(DOCKER_HOST=MISSING_SOCKET)
def test_healthz_503_when_engine_unreachable(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["docker"]["reachable"] is False
    assert body["docker"]["version"] is None
    error = body["docker"]["error"]
    assert f"The Docker Engine at {MISSING_SOCKET} does not answer" in error
    assert "scripts/ensure-docker" in error


@override_settings(SPOON_JOB_IMAGE="spoon-test-missing:none")
def test_healthz_503_when_job_image_missing(client, engine):
    body = client.get("/healthz").json()
    assert body["ok"] is False
    assert body["docker"]["reachable"] is True
    assert body["docker"]["image_present"] is False
    assert "manage.py buildimages" in body["docker"]["error"]


def test_healthz_needs_no_login_and_only_answers_get(engine):
    from django.test import Client

    assert Client().get("/healthz").status_code == 200
    assert Client().post("/healthz").status_code == 405


def test_checkdocker_exit_codes(engine):
    ok = manage("checkdocker", check=False)
    assert ok.returncode == 0, ok.stderr
    assert "ok" in ok.stdout

    down = manage("checkdocker", env={**os.environ, "DOCKER_HOST": MISSING_SOCKET}, check=False)
    assert down.returncode == 1
    assert "does not answer" in down.stderr and "scripts/ensure-docker" in down.stderr
    assert "unreachable" in down.stdout

    missing = manage(
        "checkdocker",
        env={**os.environ, "SPOON_JOB_IMAGE": "spoon-test-missing:none"},
        check=False,
    )
    assert missing.returncode == 1
    assert "manage.py buildimages" in missing.stderr


def test_unreachable_engine_is_logged_at_startup_and_ui_still_serves(tmp_path):
    import urllib.error
    import urllib.request

    server = SpoonServer(tmp_path, DOCKER_HOST=MISSING_SOCKET).start()
    try:
        with urllib.request.urlopen(server.url + "/login/") as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError) as health:
            urllib.request.urlopen(server.url + "/healthz")
        assert health.value.code == 503
    finally:
        server.stop()
    log = server.output()
    assert "Boxes will not start" in log
    assert f"The Docker Engine at {MISSING_SOCKET} does not answer" in log


def layer_backend(settings) -> str:
    """The layer this run is configured with (REDIS_URL picks Redis)."""
    return "RedisChannelLayer" if settings.REDIS_URL else "InMemoryChannelLayer"
