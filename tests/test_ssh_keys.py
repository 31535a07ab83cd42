"""SSH keys: real keys from ssh-keygen accepted and fingerprinted as it does;
malformed, weak, private and repeated keys refused with a sentence; the
Settings -> SSH keys page and the JSON API; one user's keys out of another's
reach."""

import json
import subprocess

import pytest

from ssh import accounts, keys
from ssh.models import SshKey

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def made_keys(tmp_path_factory):
    """Public keys made by Debian's ssh-keygen, with its own fingerprints."""
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for name, args in {
        "ed25519": ["-t", "ed25519"],
        "ecdsa": ["-t", "ecdsa", "-b", "384"],
        "rsa2048": ["-t", "rsa", "-b", "2048"],
        "rsa1024": ["-t", "rsa", "-b", "1024"],
    }.items():
        path = folder / name
        subprocess.run(
            ["ssh-keygen", "-q", "-N", "", "-C", f"me@{name}", "-f", path, *args], check=True
        )
        listed = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", f"{path}.pub"],
            check=True, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        made[name] = {
            "public": (folder / f"{name}.pub").read_text(),
            "private": path.read_text(),
            "fingerprint": listed[1],
            "bits": int(listed[0]),
        }
    return made


def test_real_keys_are_accepted_and_fingerprinted_as_ssh_keygen_does(made_keys):
    for name, kind in [("ed25519", "ssh-ed25519"), ("ecdsa", "ecdsa-sha2-nistp384"),
                       ("rsa2048", "ssh-rsa")]:  # fmt: skip
        parsed = keys.parse(made_keys[name]["public"])
        assert parsed.kind == kind
        assert parsed.fingerprint == made_keys[name]["fingerprint"]
        assert parsed.bits == made_keys[name]["bits"]
        assert parsed.comment == f"me@{name}"
        assert parsed.public_key == " ".join(made_keys[name]["public"].split()[:2])


@pytest.mark.parametrize(
    "text, says",
    [
        ("", "Paste a public key"),
        ("   \n", "Paste a public key"),
        ("ssh-ed25519", "not a valid public key"),
        ("ssh-ed25519 AAAA!!!!", "not a valid public key"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==", "not a valid public key"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "are not accepted"),
        ("sk-ssh-ed25519@openssh.com AAAA me", "Security-key (FIDO) keys are not supported"),
        ("hello world", "are not accepted"),
        ("x" * 20000, "too long"),
    ],
)
def test_bad_keys_are_refused_with_a_sentence(text, says):
    with pytest.raises(Exception) as refused:
        keys.parse(text)
    assert says in refused.value.messages[0]
    assert refused.value.field == "public_key"


def test_weak_private_and_pasted_twice_keys_are_refused(made_keys):
    with pytest.raises(Exception, match="1024 bits, which is too weak"):
        keys.parse(made_keys["rsa1024"]["public"])
    with pytest.raises(Exception, match="That is a private key"):
        keys.parse(made_keys["ed25519"]["private"])
    two = made_keys["ed25519"]["public"] + made_keys["ecdsa"]["public"]
    with pytest.raises(Exception, match="one key at a time"):
        keys.parse(two)


def test_the_api_adds_lists_and_deletes_keys_and_refuses_twice(client, make_user, made_keys):
    client.force_login(make_user())
    answer = client.post(
        "/api/ssh-keys/",
        {"name": "laptop", "public_key": made_keys["ed25519"]["public"]},
        content_type="application/json",
    )
    assert answer.status_code == 201, answer.content
    added = answer.json()
    assert added["name"] == "laptop" and added["kind"] == "ssh-ed25519"
    assert added["fingerprint"] == made_keys["ed25519"]["fingerprint"]
    assert added["last_used_at"] is None

    again = client.post(
        "/api/ssh-keys/",
        {"name": "again", "public_key": made_keys["ed25519"]["public"]},
        content_type="application/json",
    )
    assert again.status_code == 400
    assert again.json() == {
        "error": f"You have added this key already ({added['fingerprint']}).",
        "field": "public_key",
    }
    unnamed = client.post(
        "/api/ssh-keys/", {"public_key": made_keys["ecdsa"]["public"]},
        content_type="application/json",
    )  # fmt: skip
    assert unnamed.json()["name"] == "me@ecdsa", "the key's comment names it"
    weak = client.post(
        "/api/ssh-keys/", {"name": "old", "public_key": made_keys["rsa1024"]["public"]},
        content_type="application/json",
    )  # fmt: skip
    assert weak.status_code == 400 and "too weak" in weak.json()["error"]
    for bad in (b"[]", b"not json", json.dumps({"public_key": 5}).encode()):
        refused = client.post("/api/ssh-keys/", bad, content_type="application/json")
        assert refused.status_code == 400 and refused.json()["error"], bad

    listed = client.get("/api/ssh-keys/").json()["keys"]
    assert [k["name"] for k in listed] == ["laptop", "me@ecdsa"]
    assert client.delete(f"/api/ssh-keys/{added['id']}").json() == {"deleted": added["id"]}
    assert client.get(f"/api/ssh-keys/{added['id']}").status_code == 404
    assert client.get("/api/ssh-keys/99999999999999999999999").status_code == 404
    assert [k["name"] for k in client.get("/api/ssh-keys/").json()["keys"]] == ["me@ecdsa"]


def test_another_users_key_answers_like_a_missing_one(client, make_user, made_keys):
    owner, other = make_user(), make_user()
    key = accounts.add_key(owner, "laptop", made_keys["ed25519"]["public"])
    client.force_login(other)
    missing = client.get("/api/ssh-keys/999999")
    for answer in (client.get(f"/api/ssh-keys/{key.pk}"), client.delete(f"/api/ssh-keys/{key.pk}")):
        assert answer.status_code == 404 and answer.json() == missing.json()
    client.post(f"/settings/ssh-keys/{key.pk}/delete")
    assert SshKey.objects.filter(pk=key.pk).exists()
    assert client.get("/api/ssh-keys/").json() == {"keys": []}
    client.logout()
    assert client.get("/api/ssh-keys/").status_code == 401


def test_the_keys_page_shows_how_to_connect_and_says_what_is_wrong(client, make_user, made_keys):
    user = make_user()
    client.force_login(user)
    page = client.get("/settings/ssh-keys/", HTTP_HOST="localhost:8000").content.decode()
    login = user.box.username
    assert f"ssh -p 2222 {login}@localhost" in page
    assert "Port 2222" in page and f"User {login}" in page and "No keys yet" in page

    refused = client.post("/settings/ssh-keys/", {"name": "old", "public_key": "ssh-rsa AAAA"})
    assert refused.status_code == 400
    assert "not a valid public key" in refused.content.decode()
    assert 'value="old"' in refused.content.decode(), "what was typed stays"
    private = client.post(
        "/settings/ssh-keys/", {"name": "oops", "public_key": made_keys["ed25519"]["private"]}
    )
    assert "That is a private key" in private.content.decode()
    assert "PRIVATE KEY-----" not in private.content.decode(), "a private key is not echoed"

    added = client.post(
        "/settings/ssh-keys/", {"name": "laptop", "public_key": made_keys["ed25519"]["public"]},
        follow=True,
    )  # fmt: skip
    text = added.content.decode()
    assert f"Added laptop ({made_keys['ed25519']['fingerprint']})" in text
    assert made_keys["ed25519"]["fingerprint"] in text and "never" in text
    key = SshKey.objects.get(user=user)
    gone = client.post(f"/settings/ssh-keys/{key.pk}/delete", follow=True)
    assert "no longer opens your box" in gone.content.decode()
    assert not SshKey.objects.filter(user=user).exists()
