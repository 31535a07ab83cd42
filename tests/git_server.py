"""A private git server for dotfiles tests (tests/gitserver): started inside
a box's own network namespace, so the box reaches it on loopback and nothing
crosses a Docker bridge."""

import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from boxes import docker_engine, images
from tests.support import TEST_LABEL, one_builder
from tests.waits import until

IMAGE = "spoon-test-gitserver:latest"
CONTEXT = Path(__file__).parent / "gitserver"
HTTP_PORT, SSH_PORT = 18080, 12222
FILE_NAME, FILE_TEXT = ".private-dotfile", "from the private repository"


def ensure_image() -> None:
    """Built from the job image, again only when either changed."""
    wanted = {
        "spoon.test-context": images.context_hash(CONTEXT),
        "spoon.test-base": docker_engine.image_id(settings.SPOON_JOB_IMAGE) or "",
    }
    with one_builder():
        labels = docker_engine.image_labels(IMAGE) or {}
        if any(labels.get(key) != value for key, value in wanted.items()):
            buildargs = {"BASE": settings.SPOON_JOB_IMAGE}
            docker_engine.build_image(CONTEXT, IMAGE, buildargs, wanted, log=lambda line: None)


@dataclass
class GitServer:
    name: str

    http_url = f"http://127.0.0.1:{HTTP_PORT}/dots.git"
    ssh_url = f"ssh://git@127.0.0.1:{SSH_PORT}/srv/git/dots.git"

    def requests(self) -> list[str]:
        """What reached the http side: "<method> <path> auth=none|right|wrong"."""
        code, output = docker_engine.exec_run(self.name, ["cat", "/srv/http.log"])
        return [line for line in output.decode().splitlines() if " auth=" in line]


def start(box_name: str, token="", token_user="git", authorized_key="", delay=0.0) -> GitServer:
    """A server in the network namespace of the container box_name."""
    ensure_image()
    name = f"spoon-test-git-{uuid.uuid4().hex[:10]}"
    docker_engine.run_container(
        IMAGE,
        name=name,
        labels={TEST_LABEL: settings.SPOON_INSTANCE},
        environment={
            "TOKEN": token,
            "TOKEN_USER": token_user,
            "AUTHORIZED_KEY": authorized_key,
            "DELAY": str(delay),
            "HTTP_PORT": str(HTTP_PORT),
            "SSH_PORT": str(SSH_PORT),
            "FILE_NAME": FILE_NAME,
            "FILE_TEXT": FILE_TEXT,
        },
        network=f"container:{box_name}",
    )

    def ready_or_gone() -> bool:
        state = docker_engine.container_state(name)
        return "ready" in docker_engine.container_logs(name) or not (state and state.running)

    until(ready_or_gone, "the git server did not start")
    assert "ready" in docker_engine.container_logs(name), docker_engine.container_logs(name)
    return GitServer(name)
