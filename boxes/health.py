"""Is the Docker Engine there, and does it hold the job image?"""

import logging

from django.conf import settings

from boxes import docker_engine

logger = logging.getLogger(__name__)

FIX_IMAGE_MISSING = (
    "The job image {image} is not present: build it with `manage.py buildimages`, "
    "or point SPOON_JOB_IMAGE at an image the engine has."
)


def engine_status() -> dict:
    """The facts /healthz and `manage.py checkdocker` report."""
    status = {
        "reachable": False,
        "version": None,
        "image": settings.SPOON_JOB_IMAGE,
        "image_present": False,
        "error": None,
    }
    try:
        status["version"] = docker_engine.version()
        status["reachable"] = True
        status["image_present"] = docker_engine.image_labels(settings.SPOON_JOB_IMAGE) is not None
    except docker_engine.EngineError as exc:
        status["error"] = str(exc)
        return status
    if not status["image_present"]:
        status["error"] = FIX_IMAGE_MISSING.format(image=settings.SPOON_JOB_IMAGE)
    return status


def is_ok(status: dict) -> bool:
    return status["reachable"] and status["image_present"]


def log_startup_problems() -> None:
    """Say at startup what is wrong with the engine; the web UI serves anyway."""
    status = engine_status()
    if not is_ok(status):
        logger.error("Boxes will not start: %s", status["error"])
