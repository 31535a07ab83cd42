"""Private dotfiles repositories, cloned in a real box from real git servers
(git http-backend behind basic auth, Debian's sshd) reached on loopback in
the box's own network namespace: the credential works, is kept nowhere in
the box, and a wrong one ends the run with a sentence."""

import threading

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from boxes import commands, docker_engine, lifecycle
from dotfiles import materialize, repository
from dotfiles.models import DotfilesConfig, DotfilesRun
from tests import git_server

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "tok-PRIVATE-CANARY-7f3e9a"


@pytest.fixture
def box(engine, make_user, settings):
    settings.SPOON_DOTFILES_URL_SCHEMES = ["https", "ssh", "http"]
    return lifecycle.ensure_box(make_user())


@pytest.fixture
def serve():
    """serve(box, **options): a git server in the box's network namespace."""
    started = []

    def start(box, **options):
        server = git_server.start(box.container_name, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        docker_engine.remove_container(server.name)


def apply(box) -> DotfilesRun:
    return materialize.apply(box, DotfilesRun.Trigger.APPLY_NOW)


def everything_in_the_box(box) -> str:
    """The home's files (git's objects too), every process's arguments and
    environment."""
    script = "cat $(find ~ -type f) /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null; true"
    return commands.run(box, ["sh", "-c", script]).output.decode(errors="replace")


def test_a_token_clones_over_https_and_is_kept_nowhere_in_the_box(box, serve, sh):
    sh(box, "git config --global credential.helper store")  # the user's own helper
    server = serve(box, token=TOKEN, delay=1.0)
    repository.update(box.user, {"repo_url": server.http_url, "access": "token", "token": TOKEN})
    seen, done = [], threading.Event()

    def look_while_cloning():
        while not done.is_set():
            seen.append(sh(box, "ps -eww -o args; cat /proc/[0-9]*/environ | tr '\\0' '\\n'"))

    watcher = threading.Thread(target=look_while_cloning)
    watcher.start()
    try:
        run = apply(box)
    finally:
        done.set()
        watcher.join()
    assert run.status == "succeeded", run.log
    assert "cloning http://127.0.0.1:18080/dots.git with your token" in run.log
    assert sh(box, f"cat ~/{git_server.FILE_NAME}") == git_server.FILE_TEXT
    assert any("auth=right" in line for line in server.requests())
    assert any("git" in processes and "clone" in processes for processes in seen), "it looked"
    assert not any(TOKEN in processes for processes in seen), "never in the process list"
    assert TOKEN not in run.log
    assert TOKEN not in everything_in_the_box(box)
    assert sh(box, "test -e ~/.git-credentials || echo none") == "none", "the user's helper"
    assert sh(box, "git -C ~/.dotfiles remote get-url origin") == server.http_url
    stored = DotfilesConfig.objects.values_list("encrypted_token", flat=True).get(user=box.user)
    assert TOKEN.encode() not in bytes(stored), "encrypted at rest"


def test_a_wrong_token_ends_the_run_with_a_sentence(box, serve, sh):
    server = serve(box, token=TOKEN)
    repository.update(
        box.user, {"repo_url": server.http_url, "access": "token", "token": "tok-wrong-1234"}
    )
    run = apply(box)
    assert run.status == "failed"
    assert "spoon: error: 127.0.0.1:18080 refused the token." in run.log
    assert "tok-wrong-1234" not in run.log
    assert any("auth=wrong" in line for line in server.requests())


def test_the_token_goes_to_the_repository_host_only_not_where_it_redirects(box, serve):
    server = serve(box, token=TOKEN)
    moved = server.http_url.replace("/dots.git", "/moved.git")
    repository.update(box.user, {"repo_url": moved, "access": "token", "token": TOKEN})
    run = apply(box)
    assert run.status == "failed"
    assert (
        "spoon: error: 127.0.0.1:18080 sent the clone on to http://localhost:18080, and Spoon "
        "gives the token to 127.0.0.1:18080 only: give the repository's URL there instead."
    ) in run.log
    sent = server.requests()
    assert any(line.startswith("GET localhost:") for line in sent), "it was redirected"
    assert not any(line.startswith("GET localhost:") and "auth=right" in line for line in sent)


def test_a_private_repository_without_access_asks_for_a_sign_in(box, serve):
    server = serve(box, token=TOKEN)
    repository.update(box.user, {"repo_url": server.http_url})
    run = apply(box)
    assert run.status == "failed"
    assert "127.0.0.1:18080 asks for a sign-in: for a private repository, give Spoon a token" in (
        run.log
    )


def test_a_deploy_key_clones_over_ssh_trusting_the_host_key_on_first_use(box, serve, sh):
    config = repository.set_deploy_key(box.user)
    private = config.deploy_key
    server = serve(box, authorized_key=config.deploy_key_public)
    repository.update(box.user, {"repo_url": server.ssh_url, "access": "deploy_key"})
    run = apply(box)
    assert run.status == "succeeded", run.log
    assert "with your deploy key" in run.log
    assert "spoon: trusting 127.0.0.1:12222's host key (ED25519) SHA256:" in run.log
    assert sh(box, f"cat ~/{git_server.FILE_NAME}") == git_server.FILE_TEXT
    key_line = private.splitlines()[2]  # a line of the key's own base64
    assert key_line not in run.log
    assert key_line not in everything_in_the_box(box)
    assert sh(box, "pgrep -c ssh-agent || true") == "0", "its agent is gone"
    assert sh(box, "test -e ~/.ssh/known_hosts || echo untouched") == "untouched"

    again = apply(box)
    assert again.status == "succeeded", again.log
    assert "trusting" not in again.log, "known from now on"

    docker_engine.remove_container(server.name)
    serve(box, authorized_key=config.deploy_key_public)  # the same address, a new host key
    changed = apply(box)
    assert changed.status == "failed"
    assert "spoon: error: 127.0.0.1:12222's host key is not the one Spoon trusted before" in (
        changed.log
    )


def test_a_pasted_key_works_and_a_key_the_server_does_not_know_is_refused(box, serve, sh):
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        .decode()
    )
    config = repository.set_deploy_key(box.user, pem)
    assert config.deploy_key_public.startswith("ssh-rsa ")
    server = serve(box, authorized_key=config.deploy_key_public)
    repository.update(box.user, {"repo_url": server.ssh_url, "access": "deploy_key"})
    assert apply(box).status == "succeeded"

    repository.set_deploy_key(box.user)  # a new key the server has not been given
    run = apply(box)
    assert run.status == "failed"
    assert "spoon: error: 127.0.0.1:12222 refused the deploy key. Add its public half" in run.log
    assert sh(box, "pgrep -c ssh-agent || true") == "0"
