"""Building the base and job images locally, and knowing when they are current.

The base image is a Debian root from mmdebstrap (images/base), imported
without any registry. The job image is images/job/Dockerfile built FROM it.
Each image is labeled with a content hash of its build context, so a build is
skipped while nothing that went into it changed.
"""

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from boxes import docker_engine

IMAGES_DIR = Path(settings.BASE_DIR) / "images"
LABEL_HASH = "spoon.context-hash"
LABEL_BASE = "spoon.base-id"
LOCAL_BASE_REPOSITORY = "spoon-base"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

Log = Callable[[str], None]


class ImageBuildError(Exception):
    """An image could not be built; the message says why and what to do."""


def context_hash(directory: Path) -> str:
    """sha256 over every file's relative path, executable bit and content."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        digest.update(b"x" if path.stat().st_mode & 0o111 else b"-")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def ensure_images(force: bool = False, log: Log = print) -> None:
    """Build what is missing or stale: the base (when local) and the job image."""
    job_ref = settings.SPOON_JOB_IMAGE
    job_hash = context_hash(IMAGES_DIR / "job")
    job_labels = docker_engine.image_labels(job_ref)
    if job_labels is not None and not force:
        if LABEL_HASH not in job_labels:
            log(f"{job_ref}: present and not built here (pulled?), left as it is")
            return
        base_id = docker_engine.image_id(settings.SPOON_BASE_IMAGE)
        if job_labels[LABEL_HASH] == job_hash and job_labels.get(LABEL_BASE) in (None, base_id):
            log(f"{job_ref}: up to date")
            return
    base_id = _ensure_base(force, log)
    log(f"{job_ref}: building from {settings.SPOON_BASE_IMAGE}")
    with tempfile.TemporaryDirectory(prefix="spoon-job-") as tmp:
        context = Path(tmp) / "job"
        shutil.copytree(IMAGES_DIR / "job", context, symlinks=True)
        # npm, inside the build, trusts what this machine trusts (see the Dockerfile).
        if HOST_CA_BUNDLE.is_file():
            shutil.copyfile(HOST_CA_BUNDLE, context / "build-ca.crt")
        docker_engine.build_image(
            context,
            job_ref,
            buildargs={"BASE": settings.SPOON_BASE_IMAGE},
            labels={LABEL_HASH: job_hash, LABEL_BASE: base_id},
            log=log,
        )
    log(f"{job_ref}: built")


def _ensure_base(force: bool, log: Log) -> str:
    base_ref = settings.SPOON_BASE_IMAGE
    local = base_ref.rpartition(":")[0] == LOCAL_BASE_REPOSITORY
    base_hash = context_hash(IMAGES_DIR / "base")
    labels = docker_engine.image_labels(base_ref)
    if labels is not None and not (local and (force or labels.get(LABEL_HASH) != base_hash)):
        log(f"{base_ref}: up to date" if local else f"{base_ref}: present, used as it is")
        return docker_engine.image_id(base_ref)
    if not local:
        raise ImageBuildError(
            f"The base image {base_ref} is missing: pull it (docker pull {base_ref}), "
            f"or unset SPOON_BASE_IMAGE to build a Debian base here."
        )
    log(f"{base_ref}: building a Debian root with mmdebstrap")
    with tempfile.TemporaryDirectory(prefix="spoon-base-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        _run_logged([str(IMAGES_DIR / "base" / "mkrootfs"), str(tarball)], log)
        image = docker_engine.import_rootfs(
            tarball,
            base_ref,
            changes=[f"LABEL {LABEL_HASH}={base_hash}", "ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]'],
        )
    log(f"{base_ref}: built")
    return image


def _run_logged(argv: list[str], log: Log) -> None:
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    tail: list[str] = []
    for line in process.stdout:
        log(line.rstrip())
        tail = (tail + [line.rstrip()])[-5:]
    if process.wait() != 0:
        raise ImageBuildError(
            f"{Path(argv[0]).name} failed (exit {process.returncode}): " + " / ".join(tail)
        )


def resolve_image(explicit: str = "", preferred: str = "", box=None) -> tuple[str, str]:
    """The image to run, by precedence: explicit > preferred (what the user
    chose for what they are doing, such as a workspace's image) > the user's
    own > SPOON_JOB_IMAGE.

    Returns (ref, image id); raises ImageMissing, naming the fix, when the
    engine does not have it, before anything is created from it.
    """
    choices = [
        ("asked for", explicit),
        ("preferred", preferred),
        ("set for the user", box.image if box else ""),
        ("SPOON_JOB_IMAGE", settings.SPOON_JOB_IMAGE),
    ]
    level, ref = next((level, ref) for level, ref in choices if ref)
    found = docker_engine.image_id(ref)
    if found is None:
        if level == "SPOON_JOB_IMAGE":
            raise docker_engine.ImageMissing(
                f"The job image {ref} is not present: run `manage.py pulljobimage` to fetch "
                f"it from its registry, or `manage.py buildimages` to build it here."
            )
        raise docker_engine.ImageMissing(
            f"The image {ref} ({level}) is not present: pull or build it, or clear that setting."
        )
    return ref, found


def pull_job_image(log: Log = print) -> str:
    """Fetch SPOON_JOB_IMAGE (tag or digest) from its registry; returns its id."""
    ref = settings.SPOON_JOB_IMAGE
    log(f"{ref}: pulling")
    try:
        found = docker_engine.pull_image(ref)
    except docker_engine.EngineUnreachable:
        raise
    except docker_engine.EngineError as exc:
        raise ImageBuildError(
            f"Pulling {ref} failed: {exc}. Check the ref, that the engine reaches its "
            f"registry, and `docker login` for a private one."
        ) from exc
    log(f"{ref}: present ({found})")
    return found
