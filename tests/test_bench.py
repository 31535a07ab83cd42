"""The benchmarks run (tiny sizes, no timing asserted: figures belong in bench/)."""

import os
import subprocess
import sys

import pytest

from boxes import docker_engine
from tests.support import REPO

# Benchmarks one at a time: each checks the engine holds nothing of theirs after.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bench")]


@pytest.fixture
def leaves_nothing(engine):
    """What the benchmark made is gone after it (containers of earlier,
    killed runs do not count)."""
    before = {c.id for c in docker_engine.list_containers({})}
    yield
    made = [c.name for c in docker_engine.list_containers({}) if c.id not in before]
    assert not [name for name in made if "bench" in name or name.startswith("spoon-box-team")]


def test_bench_boxes_runs_and_cleans_up(leaves_nothing):
    result = subprocess.run(
        [
            sys.executable,
            "bench/boxes.py",
            "--rounds",
            "1",
            "--warm",
            "3",
            "--rows",
            "5",
            "--containers",
            "2",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    table = result.stdout
    for row in (
        "docker run + docker exec (CLI)",
        "cold ensure_box",
        "warm ensure_box",
        "reapboxes, 5 rows, 2 containers in use",
        "reapboxes, 5 rows, 3 containers idle",
    ):
        assert f"| {row}" in table


def test_bench_terminal_runs_and_cleans_up(leaves_nothing):
    result = subprocess.run(
        [sys.executable, "bench/terminal.py", "--megabytes", "1", "--keys", "4", "--opens", "1",
         "--idle", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for row in ("throughput", "keystroke echo p50", "Ctrl-C under yes", "warm open",
                "RSS per idle terminal"):  # fmt: skip
        assert f"| {row}" in result.stdout


def test_bench_dotfiles_runs(leaves_nothing):
    result = subprocess.run(
        [sys.executable, "bench/dotfiles.py", "--files", "5", "--rounds", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for row in (
        "docker exec of true",
        "apply writing 5 overlay files",
        "apply with nothing changed",
    ):
        assert f"| {row}" in result.stdout


def test_bench_tmux_memory_runs(leaves_nothing):
    result = subprocess.run(
        [sys.executable, "bench/tmux_memory.py", "--megabytes", "1", "--limits", "100,1000"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| (empty pane, baseline)" in result.stdout
    assert "|                  1000 |" in result.stdout


def test_bench_preview_runs(leaves_nothing):
    result = subprocess.run(
        [sys.executable, "bench/preview.py", "--requests", "10", "--megabytes", "2",
         "--connections", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for row in ("keep-alive GET p50", "download 2 MB", "new connection, first byte p50"):
        assert row in result.stdout


def test_bench_ssh_runs(leaves_nothing):
    result = subprocess.run(
        [sys.executable, "bench/ssh.py", "--keys", "10", "--megabytes", "2", "--requests", "10"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for row in ("keystroke echo p50", "2 MB into the box", "keep-alive GET p50"):
        assert row in result.stdout


def test_bench_run_output_runs_on_its_own_postgresql_and_redis(leaves_nothing):
    result = subprocess.run(
        ["scripts/with-postgres-redis", sys.executable, "bench/run_output.py",
         "--megabytes", "1", "--followers", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for row in ("bytes to the database", "bytes from the database", "write-ahead log bytes"):
        assert f"| {row}" in result.stdout
    assert "| all of it reached every follower | True | True |" in result.stdout


def test_bench_run_output_says_what_it_needs(engine):
    bare = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "bench/run_output.py"],
        cwd=REPO, env=bare, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0 and "scripts/with-postgres-redis" in result.stderr


def test_bench_team_runs_on_its_own_postgresql_and_redis(leaves_nothing):
    result = subprocess.run(
        ["scripts/with-postgres-redis", sys.executable, "bench/team.py",
         "--terminals", "4", "--boxes", "2", "--seconds", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for row in ("two daphnes behind nginx | 4 |", "one daphne, no nginx (baseline) | 4 |"):
        assert f"| {row}" in result.stdout


def test_bench_prompt_prints_its_table(leaves_nothing):
    result = subprocess.run(
        [sys.executable, "bench/prompt.py", "--files", "50", "--rounds", "3"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "| git status, same checkout (baseline)" in result.stdout
