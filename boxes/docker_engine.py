"""The one module that talks to the Docker Engine.

Everything else in Spoon calls these functions and sees EngineError (with a
sentence a person can act on) instead of docker-py's exceptions.
"""

import threading
from collections.abc import Callable, Iterator

import docker
import requests
from django.conf import settings
from docker import errors as docker_errors

FIX_UNREACHABLE = (
    "Start the Docker Engine (as root: scripts/ensure-docker), "
    "or point DOCKER_HOST at one that runs."
)


class EngineError(Exception):
    """The engine refused or failed; the message says what happened."""


class EngineUnreachable(EngineError):
    """No engine answers at the configured address."""


class ImageMissing(EngineError):
    """The engine answers, but the image is not there."""


class NotFound(EngineError):
    """A container, volume or image that was named does not exist."""


_clients: dict[tuple, docker.DockerClient] = {}
_clients_lock = threading.Lock()


def engine_address() -> str:
    return settings.DOCKER_HOST or "unix:///var/run/docker.sock"


def _client() -> docker.DockerClient:
    """One client (one connection pool) per engine address, shared by threads."""
    key = (engine_address(), settings.DOCKER_TLS_VERIFY, settings.DOCKER_CERT_PATH)
    with _clients_lock:
        if key not in _clients:
            environment = {"DOCKER_HOST": engine_address()}
            if settings.DOCKER_TLS_VERIFY:
                environment["DOCKER_TLS_VERIFY"] = settings.DOCKER_TLS_VERIFY
            if settings.DOCKER_CERT_PATH:
                environment["DOCKER_CERT_PATH"] = settings.DOCKER_CERT_PATH
            try:
                _clients[key] = docker.DockerClient(
                    **docker.utils.kwargs_from_env(environment=environment),
                    timeout=settings.DOCKER_TIMEOUT,
                )
            except docker_errors.DockerException as exc:
                raise EngineUnreachable(_unreachable_message(exc)) from exc
        return _clients[key]


def _unreachable_message(exc: Exception) -> str:
    return f"The Docker Engine at {engine_address()} does not answer ({_reason(exc)}). " + (
        FIX_UNREACHABLE
    )


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:500]


def _call(fn: Callable, *args, **kwargs):
    """Run one docker-py call, turning its failures into EngineError."""
    try:
        return fn(*args, **kwargs)
    except docker_errors.ImageNotFound as exc:
        raise ImageMissing(_reason(exc)) from exc
    except docker_errors.NotFound as exc:
        raise NotFound(_reason(exc)) from exc
    except (requests.exceptions.ConnectionError, FileNotFoundError, ConnectionError) as exc:
        raise EngineUnreachable(_unreachable_message(exc)) from exc
    except docker_errors.DockerException as exc:
        if "Error while fetching server API version" in str(exc):
            raise EngineUnreachable(_unreachable_message(exc)) from exc
        raise EngineError(_reason(exc)) from exc


def version() -> str:
    """The engine's version; raises EngineUnreachable when nothing answers."""
    return _call(lambda: _client().version())["Version"]


# Images


def image_labels(ref: str) -> dict[str, str] | None:
    """The image's labels ({} when it has none), or None when it is missing."""
    try:
        image = _call(_client().images.get, ref)
    except (ImageMissing, NotFound):
        return None
    return dict(image.labels or {})


def image_id(ref: str) -> str | None:
    try:
        return _call(_client().images.get, ref).id
    except (ImageMissing, NotFound):
        return None


def import_rootfs(tar_path, ref: str, changes: list[str]) -> str:
    """Import a root file system tarball as image `ref` (like `docker import`)."""
    repository, _, tag = ref.rpartition(":")
    _call(
        _client().api.import_image_from_file,
        str(tar_path),
        repository=repository,
        tag=tag,
        changes=changes,
    )
    return image_id(ref)


def build_image(
    context_dir, ref: str, buildargs: dict, labels: dict, log: Callable[[str], None]
) -> str:
    """Build `ref` from a Dockerfile in context_dir, streaming the build log."""
    stream: Iterator[dict] = _call(
        _client().api.build,
        path=str(context_dir),
        tag=ref,
        buildargs=buildargs,
        labels=labels,
        rm=True,
        forcerm=True,
        decode=True,
    )
    try:
        for chunk in stream:
            if "error" in chunk:
                raise EngineError(f"Building {ref} failed: {chunk['error'].strip()}")
            text = chunk.get("stream", "").rstrip()
            if text:
                log(text)
    except requests.exceptions.RequestException as exc:
        raise EngineUnreachable(_unreachable_message(exc)) from exc
    return image_id(ref)


def remove_image(ref: str) -> None:
    try:
        _call(_client().images.remove, ref, force=True)
    except (ImageMissing, NotFound):
        pass


# Containers


def run_container(
    image: str,
    *,
    name: str,
    labels: dict[str, str],
    environment: dict[str, str] | None = None,
    volumes: dict | None = None,
    network: str = "none",
    **host_config,
) -> str:
    """Create and start a detached container; returns its id."""
    container = _call(
        _client().containers.run,
        image,
        name=name,
        labels=labels,
        environment=environment or {},
        volumes=volumes or {},
        network_mode=network,
        detach=True,
        **host_config,
    )
    return container.id


def inspect_container(name_or_id: str) -> dict:
    return _call(_client().api.inspect_container, name_or_id)


def exec_run(
    container: str,
    argv: list[str],
    *,
    user: str = "",
    environment: dict[str, str] | None = None,
    workdir: str | None = None,
) -> tuple[int, bytes]:
    """Run argv in the container to completion; returns (exit code, output)."""
    found = _call(_client().containers.get, container)
    result = _call(
        found.exec_run, argv, user=user, environment=environment, workdir=workdir, demux=False
    )
    return result.exit_code, result.output or b""


def container_logs(name_or_id: str, tail: int = 50) -> str:
    return _call(_client().api.logs, name_or_id, tail=tail).decode(errors="replace")


def stop_container(name_or_id: str, timeout: int = 10) -> None:
    _call(_client().api.stop, name_or_id, timeout=timeout)


def remove_container(name_or_id: str) -> None:
    """Force-remove a container (its volumes stay); gone already is fine."""
    try:
        _call(_client().api.remove_container, name_or_id, force=True)
    except NotFound:
        pass


# Volumes


def create_volume(name: str, labels: dict[str, str]) -> None:
    """Create a named volume; one that exists already is kept as it is."""
    _call(_client().volumes.create, name=name, labels=labels)


def remove_labeled(label: str) -> tuple[int, int]:
    """Force-remove every container, then every volume, carrying `label`."""
    client = _client()
    containers = _call(client.containers.list, all=True, filters={"label": label})
    for container in containers:
        try:
            _call(container.remove, force=True, v=False)
        except NotFound:
            pass
    volumes = _call(client.volumes.list, filters={"label": label})
    for volume in volumes:
        try:
            _call(volume.remove, force=True)
        except NotFound:
            pass
    return len(containers), len(volumes)
