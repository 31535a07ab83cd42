"""The dotfiles API's private-repository settings: a token and a deploy key
go in and never come back out, and settings that could not work (or would
send a token in the clear) are refused with the field at fault."""

import json
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.test import Client

from dotfiles.models import DotfilesConfig

pytestmark = pytest.mark.django_db

TOKEN = "tok-API-CANARY-51c2"
HTTPS = "https://example.com/me/dots.git"
SSH = "git@example.com:me/dots.git"


@pytest.fixture
def api(make_user, settings):
    settings.SPOON_DOTFILES_URL_SCHEMES = ["https", "ssh", "http"]
    client = Client()
    client.user = make_user()
    client.force_login(client.user)
    return client


def put(client, **data):
    return client.put("/api/dotfiles/config", json.dumps(data), content_type="application/json")


def post_key(client, **data):
    return client.post(
        "/api/dotfiles/deploy-key", json.dumps(data), content_type="application/json"
    )


def refused(response, field: str) -> str:
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field, response.json()
    return response.json()["error"]


@pytest.mark.both_databases
def test_a_token_is_taken_and_never_given_back(api):
    assert api.get("/api/dotfiles/config").json() | {} == {
        "enabled": True, "repo_url": "", "ref": "", "setup_path": "", "setup_args": [],
        "access": "", "token_username": "", "has_token": False, "deploy_key": None,
    }  # fmt: skip
    saved = put(api, repo_url=HTTPS, access="token", token=f"  {TOKEN}\n", token_username="me")
    assert saved.status_code == 200
    assert saved.json()["has_token"] is True and saved.json()["token_username"] == "me"
    assert TOKEN not in saved.content.decode()
    assert TOKEN not in api.get("/api/dotfiles/config").content.decode()
    assert DotfilesConfig.objects.get(user=api.user).token == TOKEN, "trimmed"
    assert put(api, ref="main").json()["has_token"] is True, "kept when not given again"

    assert api.delete("/api/dotfiles/token").status_code == 204
    forgotten = api.get("/api/dotfiles/config").json()
    assert forgotten["has_token"] is False and forgotten["access"] == "", "public again"
    assert DotfilesConfig.objects.get(user=api.user).encrypted_token in (b"", memoryview(b""))


def test_token_settings_that_cannot_work_are_refused_at_their_field(api):
    assert "Paste the token first" in refused(put(api, repo_url=HTTPS, access="token"), "token")
    assert "A token works over https" in refused(
        put(api, repo_url=SSH, access="token", token=TOKEN), "repo_url"
    )
    assert "in the clear over http: use https" in refused(
        put(api, repo_url="http://example.com/me/dots.git", access="token", token=TOKEN),
        "repo_url",
    )
    assert "without spaces" in refused(
        put(api, repo_url=HTTPS, access="token", token="two words"), "token"
    )
    assert "letters, digits" in refused(
        put(api, repo_url=HTTPS, access="token", token=TOKEN, token_username="a b"),
        "token_username",
    )
    assert "access is one of" in refused(put(api, access="password"), "access")
    assert "Put no credentials in the URL" in refused(
        put(api, repo_url=f"https://me:{TOKEN}@example.com/dots.git"), "repo_url"
    )
    config = DotfilesConfig.objects.get(user=api.user)
    assert (config.repo_url, config.access, config.encrypted_token) == ("", "", b""), "unsaved"
    loopback = put(api, repo_url="http://127.0.0.1:8080/dots.git", access="token", token=TOKEN)
    assert loopback.status_code == 200, "http to loopback never leaves the box"


def test_a_deploy_key_is_generated_and_only_its_public_half_shown(api):
    assert "Generate or paste a deploy key first" in refused(
        put(api, repo_url=SSH, access="deploy_key"), "access"
    )
    made = post_key(api)
    assert made.status_code == 201
    key = made.json()["deploy_key"]
    assert key["public_key"].startswith("ssh-ed25519 ")
    assert key["public_key"].endswith(
        f" spoon-dotfiles-{api.user.username}-" + key["public_key"][-8:]
    )
    assert key["fingerprint"].startswith("SHA256:")
    assert "PRIVATE" not in made.content.decode()
    private = DotfilesConfig.objects.get(user=api.user).deploy_key
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert private.splitlines()[1] not in api.get("/api/dotfiles/config").content.decode()

    assert "A deploy key works over ssh" in refused(
        put(api, repo_url=HTTPS, access="deploy_key"), "repo_url"
    )
    assert put(api, repo_url=SSH, access="deploy_key").json()["access"] == "deploy_key"
    assert put(api, repo_url="ssh://git@example.com:2222/me/dots.git").status_code == 200

    again = post_key(api).json()["deploy_key"]
    assert again["fingerprint"] != key["fingerprint"], "a new key replaces the old"
    assert api.delete("/api/dotfiles/deploy-key").status_code == 204
    after = api.get("/api/dotfiles/config").json()
    assert after["deploy_key"] is None and after["access"] == ""


def openssh(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


def with_passphrase(tmp_path) -> str:
    """A key as ssh-keygen makes one with a passphrase."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", tmp_path / "k"], check=True
    )
    return (tmp_path / "k").read_text()


def test_a_pasted_private_key_is_checked(api, tmp_path):
    key = ed25519.Ed25519PrivateKey.generate()
    pasted = post_key(api, private_key=openssh(key).replace("\n", "\r\n"))
    assert pasted.status_code == 201
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert pasted.json()["deploy_key"]["public_key"].startswith(public.decode() + " ")

    assert "That is a public key" in refused(
        post_key(api, private_key=public.decode()), "private_key"
    )
    assert "has a passphrase" in refused(
        post_key(api, private_key=with_passphrase(tmp_path)), "private_key"
    )
    assert "not an SSH private key" in refused(
        post_key(api, private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n"), "private_key"
    )
    assert "Paste the private key" in refused(post_key(api, private_key=42), "private_key")
    kept = api.get("/api/dotfiles/config").json()["deploy_key"]["public_key"]
    assert kept.startswith(public.decode()), "a refused paste keeps the key there was"


def test_csrf_and_login_guard_the_credentials(make_user):
    assert Client().post("/api/dotfiles/deploy-key").status_code == 401
    assert Client().delete("/api/dotfiles/token").status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_user())
    assert post_key(strict).status_code == 403
    assert strict.delete("/api/dotfiles/token").status_code == 403


def test_operators_see_the_access_and_public_key_never_the_credentials(api, make_user):
    put(api, repo_url=HTTPS, access="token", token=TOKEN)
    post_key(api)
    config = DotfilesConfig.objects.get(user=api.user)
    operator = Client()
    operator.force_login(make_user(is_staff=True, is_superuser=True))
    listed = operator.get("/admin/dotfiles/dotfilesconfig/").content.decode()
    page = operator.get(f"/admin/dotfiles/dotfilesconfig/{config.pk}/change/").content.decode()
    assert "a token over https" in listed and config.deploy_key_public in page
    for shown in (listed, page):
        assert TOKEN not in shown
        assert config.deploy_key.splitlines()[1] not in shown
        assert "encrypted" not in shown.lower()
