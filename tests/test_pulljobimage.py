"""`manage.py pulljobimage` against a real registry on 127.0.0.1 (Debian's docker-registry)."""

import os
import shutil
import subprocess
import uuid

import pytest

from boxes import docker_engine
from tests.support import TEST_LABEL, free_port, manage, wait_for_port


@pytest.fixture
def registry(tmp_path):
    binary = shutil.which("docker-registry")
    assert binary, "scripts/test installs Debian's docker-registry"
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def small_image(engine, tmp_path):
    """A few bytes standing in for the job image: pulling is what is tested,
    and pushing the real one (1.7 GB, compressed on the way) took a minute
    of CPU."""
    context = tmp_path / "small-image"
    context.mkdir()
    (context / "marker").write_text("stands in for the job image\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY marker /marker\n")
    ref = f"spoon-test-small:{uuid.uuid4().hex[:8]}"
    docker_engine.build_image(context, ref, {}, {TEST_LABEL: "small"}, log=lambda line: None)
    yield ref
    docker_engine.remove_image(ref)


def test_pull_the_job_image_back_from_a_registry(registry, small_image):
    ref = f"{registry}/spoon-job:pulled"
    docker_engine.tag_image(small_image, ref)
    docker_engine.push_image(ref)
    docker_engine.remove_image(ref)
    assert docker_engine.image_id(ref) is None
    env = {**os.environ, "SPOON_JOB_IMAGE": ref}
    pulled_refs = [ref]
    try:
        pulled = manage("pulljobimage", env=env, check=False)
        assert pulled.returncode == 0, pulled.stderr
        assert f"{ref}: present (sha256:" in pulled.stdout
        assert docker_engine.image_id(ref) == docker_engine.image_id(small_image)
        assert manage("checkdocker", env=env, check=False).returncode == 0

        (by_digest,) = [d for d in docker_engine.repo_digests(ref) if d.startswith(registry)]
        pulled_refs.append(by_digest)
        docker_engine.remove_image(ref)
        docker_engine.remove_image(by_digest)
        env["SPOON_JOB_IMAGE"] = by_digest
        pulled = manage("pulljobimage", env=env, check=False)
        assert pulled.returncode == 0, pulled.stderr
        assert docker_engine.image_id(by_digest) == docker_engine.image_id(small_image)
    finally:
        for pulled_ref in pulled_refs:
            docker_engine.remove_image(pulled_ref)


def test_a_missing_tag_is_a_clear_error(engine, registry):
    ref = f"{registry}/spoon-job:never-pushed"
    failed = manage("pulljobimage", env={**os.environ, "SPOON_JOB_IMAGE": ref}, check=False)
    assert failed.returncode == 1
    assert f"Pulling {ref} failed" in failed.stderr
    assert "Traceback" not in failed.stderr
