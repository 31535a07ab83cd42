"""The one module that talks to the Docker Engine.

Everything else in Spoon calls these functions and sees EngineError (with a
sentence a person can act on) instead of docker-py's exceptions.
"""

import asyncio
import json
import ssl
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import docker
import requests
from django.conf import settings
from docker import errors as docker_errors

from spoon import metrics

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


# API calls made, by function name: benchmarks and tests count them.
calls: Counter = Counter()

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
                metrics.engine_errors.labels("connect", EngineUnreachable.__name__).inc()
                raise EngineUnreachable(_unreachable_message(exc)) from exc
        return _clients[key]


def _unreachable_message(exc: Exception) -> str:
    return f"The Docker Engine at {engine_address()} does not answer ({_reason(exc)}). " + (
        FIX_UNREACHABLE
    )


def _too_slow() -> str:
    return (
        f"The Docker Engine at {engine_address()} did not answer within "
        f"{settings.DOCKER_TIMEOUT} s (SPOON_DOCKER_TIMEOUT)."
    )


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:500]


def _call(fn: Callable, *args, **kwargs):
    """Run one docker-py call, turning its failures into EngineError."""
    calls[getattr(fn, "__name__", "call")] += 1
    with metrics.engine_call(metrics.call_name(fn)):
        return _translated(fn, *args, **kwargs)


def _translated(fn: Callable, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except docker_errors.ImageNotFound as exc:
        raise ImageMissing(_reason(exc)) from exc
    except docker_errors.NotFound as exc:
        raise NotFound(_reason(exc)) from exc
    except (requests.exceptions.ConnectionError, FileNotFoundError, ConnectionError) as exc:
        raise EngineUnreachable(_unreachable_message(exc)) from exc
    except docker_errors.DockerException as exc:  # the engine's own refusals (APIError)
        if "Error while fetching server API version" in str(exc):
            raise EngineUnreachable(_unreachable_message(exc)) from exc
        raise EngineError(_reason(exc)) from exc
    except requests.exceptions.Timeout as exc:
        raise EngineError(_too_slow()) from exc
    except requests.exceptions.RequestException as exc:
        raise EngineError(f"Talking to the Docker Engine failed: {_reason(exc)}") from exc


def version() -> str:
    """The engine's version; raises EngineUnreachable when nothing answers."""
    return _call(lambda: _client().version())["Version"]


# Images


def cpu_count() -> int:
    """How many CPUs the engine's host has."""
    return int(_call(_client().info).get("NCPU") or 1)


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


def image_refs() -> set[str]:
    """Every tag and digest reference the engine holds, from one call."""
    found = _call(_client().api.images)
    return {
        ref
        for image in found
        for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or [])
    }


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


def repo_digests(ref: str) -> list[str]:
    """'registry/name@sha256:…' refs the image is known by (after a push or pull)."""
    try:
        return list(_call(_client().images.get, ref).attrs.get("RepoDigests") or [])
    except (ImageMissing, NotFound):
        return []


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


def put_archive(container: str, path: str, archive: bytes) -> None:
    """Unpack a tar archive into path (a folder that exists) in the container,
    owned as the archive says."""
    _call(_client().api.put_archive, container, path, archive)


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


def remove_labeled(label: str | list[str]) -> tuple[int, int]:
    """Force-remove every container, then every volume, carrying the label(s)."""
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


def volume_exists(name: str) -> bool:
    try:
        _call(_client().api.inspect_volume, name)
    except NotFound:
        return False
    return True


def remove_volume(name: str) -> None:
    try:
        _call(_client().api.remove_volume, name, force=True)
    except NotFound:
        pass


# Networks


def ensure_isolated_network(name: str, labels: dict[str, str]) -> None:
    """A bridge network whose containers cannot reach each other (inter-
    container communication off), created on first use."""
    api = _client().api
    if _call(api.networks, names=[name]):
        return
    try:
        _call(
            api.create_network,
            name,
            driver="bridge",
            options={"com.docker.network.bridge.enable_icc": "false"},
            labels=labels,
        )
    except EngineError as exc:
        if "already exists" not in str(exc):
            raise


def remove_network(name: str) -> None:
    try:
        _call(_client().api.remove_network, name)
    except NotFound:
        pass


def network_options(name: str) -> dict[str, str]:
    return _call(_client().api.inspect_network, name).get("Options") or {}


def network_bridge(name: str) -> tuple[str, bool]:
    """The host interface a bridge network's containers come in on (the
    engine names it br-<first 12 of its id> unless told otherwise), and
    whether the network has IPv6."""
    network = _call(_client().api.inspect_network, name)
    options = network.get("Options") or {}
    bridge = options.get("com.docker.network.bridge.name") or f"br-{network['Id'][:12]}"
    return bridge, bool(network.get("EnableIPv6"))


def run_on_engine_host(image: str, argv: list[str], labels: dict[str, str]) -> str:
    """Run argv with the engine host's own programs on its own network stack
    and return what it printed; EngineError with its error output if it fails.

    A helper container from `image` joins the host's network and chroots
    into the host's / (read-only but for /run, where iptables keeps its
    lock), with NET_ADMIN and SYS_CHROOT only. So it also works when Spoon
    is not root, runs in a container, or uses an engine on another host,
    and the host's iptables writes the rules in the backend dockerd uses."""

    def run_helper() -> bytes:
        try:
            return _client().containers.run(
                image,
                argv,
                entrypoint=["chroot", "/host"],
                user="0",
                network_mode="host",
                cap_drop=["ALL"],
                cap_add=["NET_ADMIN", "SYS_CHROOT"],
                security_opt=["no-new-privileges"],
                volumes={
                    "/": {"bind": "/host", "mode": "ro"},
                    "/run": {"bind": "/host/run", "mode": "rw"},
                },
                labels=labels,
                remove=True,
                stdout=True,
                stderr=True,
            )
        except docker_errors.ContainerError as exc:
            said = (exc.stderr or b"").decode(errors="replace").strip()
            raise EngineError(f"{argv[0]} exited with {exc.exit_status}: {said[-500:]}") from exc

    return _call(run_helper).decode(errors="replace")


# Boxes: the containers Spoon owns


@dataclass(frozen=True)
class ContainerState:
    id: str
    name: str
    running: bool
    image_id: str
    labels: dict


def container_state(name: str) -> ContainerState | None:
    """One inspect; None when no such container exists."""
    try:
        info = _call(_client().api.inspect_container, name)
    except NotFound:
        return None
    return ContainerState(
        id=info["Id"],
        name=info["Name"].lstrip("/"),
        running=bool(info["State"]["Running"]),
        image_id=info["Image"],
        labels=info["Config"].get("Labels") or {},
    )


def list_containers(labels: dict[str, str]) -> list[ContainerState]:
    """Every container carrying all these labels, running or not, in ONE call."""
    filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
    found = _call(_client().api.containers, all=True, filters=filters)
    return [
        ContainerState(
            id=c["Id"],
            name=c["Names"][0].lstrip("/"),
            running=c["State"] == "running",
            image_id=c["ImageID"],
            labels=c.get("Labels") or {},
        )
        for c in found
    ]


def create_container(
    image: str,
    *,
    name: str,
    labels: dict[str, str],
    environment: dict[str, str],
    mounts: list[dict],
    hostname: str,
    **host_config,
) -> str:
    """Create (not start) a container; mounts are {source, target, type}."""
    api = _client().api
    config = api.create_host_config(
        mounts=[docker.types.Mount(m["target"], m["source"], type=m["type"]) for m in mounts],
        **host_config,
    )
    created = _call(
        api.create_container,
        image,
        name=name,
        labels=labels,
        environment=environment,
        hostname=hostname,
        host_config=config,
        detach=True,
    )
    return created["Id"]


def start_container(name_or_id: str) -> None:
    _call(_client().api.start, name_or_id)


# Exec


def exec_create(
    container: str,
    argv: list[str],
    *,
    user: str,
    environment: dict[str, str] | None = None,
    workdir: str | None = None,
    tty: bool = False,
    stdin: bool = False,
) -> str:
    created = _call(
        _client().api.exec_create,
        container,
        argv,
        user=user,
        environment=environment,
        workdir=workdir,
        tty=tty,
        stdin=stdin,
    )
    return created["Id"]


def exec_exit_code(exec_id: str) -> int | None:
    """The exit code, or None while the process still runs."""
    info = _call(_client().api.exec_inspect, exec_id)
    return None if info["Running"] else info["ExitCode"]


def exec_resize(exec_id: str, rows: int, cols: int) -> None:
    _call(_client().api.exec_resize, exec_id, height=rows, width=cols)


# Registries


def pull_image(ref: str) -> str:
    """Pull `ref` (tag or digest); returns the image id."""
    repository, tag = _split_ref(ref)
    _call(_client().api.pull, repository, tag=tag)
    found = image_id(ref)
    if found is None:
        raise ImageMissing(f"Pulling {ref} finished but the engine does not have it.")
    return found


def tag_image(ref: str, new_ref: str) -> None:
    repository, tag = _split_ref(new_ref)
    _call(_client().api.tag, ref, repository, tag=tag)


def push_image(ref: str) -> None:
    repository, tag = _split_ref(ref)
    for chunk in _call(_client().api.push, repository, tag=tag, stream=True, decode=True):
        if "error" in chunk:
            raise EngineError(f"Pushing {ref} failed: {chunk['error']}")


def _split_ref(ref: str) -> tuple[str, str | None]:
    """'host:5000/name:tag' -> ('host:5000/name', 'tag'); digests stay whole."""
    if "@" in ref:
        return ref, None
    repository, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repository, tag


# Output of an exec without a TTY comes as frames tagged with their stream.
STDOUT, STDERR = 1, 2
READ_SIZE = 65536


class ExecStream:
    """A started exec's hijacked connection, both ways: write() bytes to the
    process's stdin, read() its output. With a TTY the engine sends the
    output raw; without one, in frames (an 8-byte header: the stream, three
    zero bytes, the big-endian length), which read() takes apart here so no
    one else ever sees them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tty: bool):
        self._reader = reader
        self._writer = writer
        self._frames = bytearray()
        self.tty = tty

    async def read(self) -> tuple[int, bytes]:
        """The next output as (STDOUT or STDERR, bytes); b"" once it ended.
        Frames that arrived together from one stream come back joined."""
        if self.tty:
            return STDOUT, await self._reader.read(READ_SIZE)
        while True:
            stream, payload = self._take_frames()
            if payload:
                return stream, payload
            data = await self._reader.read(READ_SIZE)
            if not data:
                return STDOUT, b""  # a frame cut off by the end is dropped with it
            self._frames += data

    def _take_frames(self) -> tuple[int, bytes]:
        frames, offset, stream = self._frames, 0, None
        payload = bytearray()
        while len(frames) - offset >= 8:
            kind = frames[offset]
            length = int.from_bytes(frames[offset + 4 : offset + 8], "big")
            if len(frames) - offset - 8 < length or stream not in (None, kind):
                break
            stream = kind
            payload += frames[offset + 8 : offset + 8 + length]
            offset += 8 + length
        del frames[:offset]
        return stream or STDOUT, bytes(payload)

    def write(self, data: bytes) -> None:
        self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    def write_eof(self) -> None:
        self._writer.write_eof()

    def unsent(self) -> int:
        """Bytes written and not yet taken by the engine."""
        return self._writer.transport.get_write_buffer_size()

    def close(self) -> None:
        self._writer.close()


async def open_exec(exec_id: str, tty: bool) -> ExecStream:
    """Start an exec over our own asyncio connection and return its hijacked
    stream: no thread per stream, and no bytes lost to an HTTP client's
    read-ahead between the upgrade headers and the first output."""
    client = await asyncio.to_thread(_client)
    address = urllib.parse.urlparse(engine_address())
    try:
        async with asyncio.timeout(settings.DOCKER_TIMEOUT):
            if address.scheme == "unix":
                reader, writer = await asyncio.open_unix_connection(address.path, limit=2**20)
            else:
                tls = _ssl_context(client) if client.api.base_url.startswith("https://") else None
                reader, writer = await asyncio.open_connection(
                    address.hostname, address.port, ssl=tls, limit=2**20
                )
    except TimeoutError as exc:
        raise EngineError(_too_slow()) from exc
    except OSError as exc:
        raise EngineUnreachable(_unreachable_message(exc)) from exc
    calls["exec_start"] += 1
    metrics.engine_calls.labels("exec_start").inc()
    body = json.dumps({"Detach": False, "Tty": tty}).encode()
    writer.write(
        f"POST /v{client.api.api_version}/exec/{exec_id}/start HTTP/1.1\r\n"
        f"Host: docker\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode()
        + body
    )
    try:
        async with asyncio.timeout(settings.DOCKER_TIMEOUT):
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
    except TimeoutError as exc:
        writer.close()
        raise EngineError(_too_slow()) from exc
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        writer.close()
        raise EngineUnreachable(_unreachable_message(exc)) from exc
    except BaseException:  # cancelled (the terminal closed meanwhile): no socket left open
        writer.close()
        raise
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    if " 101 " not in status_line and " 200 " not in status_line:
        writer.close()
        if " 404 " in status_line:
            raise NotFound(f"exec {exec_id} not found ({status_line})")
        raise EngineError(f"Starting the exec failed: {status_line}")
    return ExecStream(reader, writer, tty)


def _ssl_context(client: docker.DockerClient) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=client.api.verify if isinstance(client.api.verify, str) else None
    )
    if not client.api.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client.api.cert:
        context.load_cert_chain(*client.api.cert)
    return context
