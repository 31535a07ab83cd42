"""Images users pick for their workspaces: the stacks that images/stacks
builds on top of the job image (node, python, chromium), custom ones that
`manage.py buildimage` builds from a registered image plus Debian packages,
and their registration (RegisteredImage), which is what users choose from.
"""

import shlex
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from boxes import docker_engine
from boxes.images import IMAGES_DIR, LABEL_BASE, LABEL_HASH, ImageBuildError, Log, context_hash
from boxes.models import RegisteredImage
from boxes.naming import validate_debian_packages, validate_image_name, validate_image_ref

STACKS_DIR = IMAGES_DIR / "stacks"
STACK_REPOSITORY = "spoon-stack"
CUSTOM_REPOSITORY = "spoon-custom"
# In the job image; with arguments it installs just those packages, by apt or dnf.
INSTALLER = "/usr/local/lib/spoon/install-packages"
DESCRIPTION_LABEL = "org.opencontainers.image.description"


def stack_names() -> list[str]:
    return sorted(p.parent.name for p in STACKS_DIR.glob("*/Dockerfile"))


def ensure_stacks(force: bool = False, log: Log = print) -> list[RegisteredImage]:
    """Build the stacks that are missing or stale and register them (an
    operator's later edits to a registration are kept)."""
    registered = []
    for name, ref, description in build_stacks(force, log):
        try:
            registered.append(register(name, ref, description, built_from=settings.SPOON_JOB_IMAGE))
        except ValidationError as exc:
            log(f"{ref}: built, not registered: {exc.messages[0]}")
    return registered


def build_stacks(force: bool = False, log: Log = print) -> list[tuple[str, str, str]]:
    """Build each images/stacks/<name> on the current job image unless it is
    up to date; returns (name, ref, description) for each."""
    job_ref = settings.SPOON_JOB_IMAGE
    job_id = docker_engine.image_id(job_ref)
    if job_id is None:
        raise ImageBuildError(
            f"The stacks build on the job image {job_ref}, which is not present: "
            f"run `manage.py buildimages` or `manage.py pulljobimage` first."
        )
    built = []
    for name in stack_names():
        ref = f"{STACK_REPOSITORY}:{name}"
        context = STACKS_DIR / name
        wanted = {LABEL_HASH: context_hash(context), LABEL_BASE: job_id}
        labels = docker_engine.image_labels(ref) or {}
        if force or any(labels.get(k) != v for k, v in wanted.items()):
            log(f"{ref}: building from {job_ref}")
            _build(context, ref, {"BASE": job_ref}, wanted, log)
            labels = docker_engine.image_labels(ref) or {}
        else:
            log(f"{ref}: up to date")
        built.append((name, ref, labels.get(DESCRIPTION_LABEL, "")))
    return built


def build_custom(
    name: str, packages: list[str], base_name: str = "", log: Log = print
) -> RegisteredImage:
    """Build spoon-custom:<name> from a registered image (or the job image)
    plus Debian packages, through the engine's API, and register it as name.
    Building again under the same name replaces that image."""
    validate_image_name(name)
    validate_debian_packages(packages)
    if base_name:
        base = RegisteredImage.objects.filter(name=base_name).first()
        if base is None:
            known = ", ".join(RegisteredImage.objects.values_list("name", flat=True)) or "none yet"
            raise ValidationError(f"No registered image {base_name!r} (registered: {known}).")
        base_ref = base.ref
    else:
        base_ref = settings.SPOON_JOB_IMAGE
    validate_image_ref(base_ref)
    ref = f"{CUSTOM_REPOSITORY}:{name}"
    clash = RegisteredImage.objects.filter(name=name).exclude(ref=ref).first()
    if clash is not None:
        raise ValidationError(
            f"The name {name!r} is registered for {clash.ref}, which buildimage did not "
            f"build; choose another name."
        )
    if docker_engine.image_id(base_ref) is None:
        raise ImageBuildError(f"{base_ref} is not present in the engine: pull or build it first.")
    with tempfile.TemporaryDirectory(prefix="spoon-custom-") as tmp:
        Path(tmp, "Dockerfile").write_text(
            f"FROM {base_ref}\n"
            f"RUN test -x {INSTALLER} || {{ echo '{base_ref} is not built on the job image: "
            f"it has no {INSTALLER}' >&2; exit 1; }}\n"
            f"RUN {INSTALLER} {shlex.join(packages)}\n"
        )
        log(f"{ref}: building from {base_ref} with {' '.join(packages)}")
        _build(Path(tmp), ref, {}, {"spoon.built-from": base_ref}, log)
    description = f"{base_name or 'the job image'} with {', '.join(packages)}"
    return register(name, ref, description[:200], built_from=base_ref, packages=packages)


def register(
    name: str, ref: str, description: str = "", built_from: str = "", packages=()
) -> RegisteredImage:
    """Register ref as name, or refresh what Spoon knows about an existing
    registration of ref (its name and whether it is offered stay the operator's)."""
    image = RegisteredImage.objects.filter(ref=ref).first()
    if image is None:
        image = RegisteredImage(name=name, ref=ref)
    image.description = description or image.description
    image.built_from = built_from
    image.packages = list(packages)
    image.full_clean()
    image.save()
    return image


def _build(context: Path, ref: str, buildargs: dict, labels: dict, log: Log) -> None:
    """Build through the engine's API; a failure names the build's last lines."""
    tail: list[str] = []

    def keep(line: str) -> None:
        log(line)
        tail[:] = (tail + [line])[-8:]

    try:
        docker_engine.build_image(context, ref, buildargs=buildargs, labels=labels, log=keep)
    except docker_engine.EngineUnreachable:
        raise
    except docker_engine.EngineError as exc:
        raise ImageBuildError(f"{exc}\n" + "\n".join(tail)) from exc


def pick(name: str, current: RegisteredImage | None = None) -> RegisteredImage | None:
    """The image a user picked by name: an offered one, or the one they have
    already (which stays theirs after an operator stops offering it). An
    empty name picks none: the user's default."""
    if not name:
        return None
    if current is not None and name == current.name:
        return current
    image = RegisteredImage.objects.filter(name=name, offered=True).first()
    if image is None:
        names = ", ".join(
            RegisteredImage.objects.filter(offered=True).values_list("name", flat=True)
        )
        raise ValidationError(f"No image {name!r} is offered here (offered: {names or 'none'}).")
    return image
