"""Images are built without a registry and only when their context changed."""

import pytest
from django.test import override_settings

from boxes import images


def test_context_hash_sees_content_and_executable_bit(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    first = images.context_hash(tmp_path)
    (tmp_path / "Dockerfile").chmod(0o755)
    second = images.context_hash(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM y\n")
    assert len({first, second, images.context_hash(tmp_path)}) == 3


def test_current_images_are_not_rebuilt(engine):
    log = []
    images.ensure_images(log=log.append)
    assert log == ["spoon-job:1: up to date"] or all("up to date" in line for line in log)


def test_images_carry_their_context_hash(engine, settings):
    from boxes import docker_engine

    labels = docker_engine.image_labels(settings.SPOON_JOB_IMAGE)
    assert labels[images.LABEL_HASH] == images.context_hash(images.IMAGES_DIR / "job")
    assert labels[images.LABEL_BASE] == docker_engine.image_id(settings.SPOON_BASE_IMAGE)
    base = docker_engine.image_labels(settings.SPOON_BASE_IMAGE)
    assert base[images.LABEL_HASH] == images.context_hash(images.IMAGES_DIR / "base")


@override_settings(SPOON_JOB_IMAGE="spoon-test-job:none", SPOON_BASE_IMAGE="spoon-test-elsewhere:1")
def test_a_missing_registry_base_is_a_clear_error(engine):
    with pytest.raises(images.ImageBuildError) as error:
        images.ensure_images(log=lambda line: None)
    assert "docker pull spoon-test-elsewhere:1" in str(error.value)
    assert "unset SPOON_BASE_IMAGE" in str(error.value)
