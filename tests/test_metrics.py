"""/metrics: Prometheus' text format, for the holder of SPOON_METRICS_TOKEN only."""

import subprocess
import sys

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from boxes import docker_engine, lifecycle, reaper
from boxes.models import Lease
from boxes.use import using_box
from tests.support import REPO, spoon_process_env
from workspaces import runs

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "metrics-token-0123456789"


@pytest.fixture
def token(settings):
    settings.SPOON_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(token=TOKEN) -> dict:
    """{(name, frozenset(labels)): value} of one scrape."""
    answer = Client().get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.content
    assert answer["Content-Type"].startswith("text/plain; version=")
    found = {}
    for family in text_string_to_metric_families(answer.content.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found, name, **labels):
    return found.get((name, frozenset(labels.items())), 0.0)


def test_no_token_set_means_no_metrics(settings):
    settings.SPOON_METRICS_TOKEN = ""
    answer = Client().get("/metrics", headers={"Authorization": "Bearer "})
    assert answer.status_code == 404
    assert b"spoon_" not in answer.content


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer wrong", f"bearer {TOKEN}", f"Basic {TOKEN}", TOKEN]
)
def test_anything_but_the_bearer_token_is_refused(token, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    answer = Client().get("/metrics", headers=headers)
    assert answer.status_code == 401
    assert answer["WWW-Authenticate"].startswith("Bearer")
    assert b"spoon_" not in answer.content and TOKEN.encode() not in answer.content


def test_boxes_leases_terminals_runs_engine_calls_and_reap_passes(
    token, engine, workspace, wait_for_run
):
    before = scrape()
    box = lifecycle.box_for(workspace.user)
    run = wait_for_run(runs.start_run(workspace, ["sh", "-c", "exit 3"]))
    with using_box(workspace.user, Lease.Kind.TERMINAL, "metrics-test"):
        during = scrape()
    reaper.reap(idle_seconds=3600)
    after = scrape()

    assert value(during, "spoon_boxes", state="running") >= 1
    assert value(during, "spoon_leases", kind="terminal") >= 1
    assert value(during, "spoon_terminals_open") >= 1
    assert value(after, "spoon_leases", kind="terminal") == value(
        before, "spoon_leases", kind="terminal"
    )
    assert value(after, "spoon_runs", status="failed") >= 1
    assert run.status == "failed"
    count = value(after, "spoon_run_duration_seconds_count", kind="command", status="failed")
    assert (
        count
        == value(before, "spoon_run_duration_seconds_count", kind="command", status="failed") + 1
    )
    get = "inspect_container"
    assert value(after, "spoon_engine_calls_total", call=get) > value(
        before, "spoon_engine_calls_total", call=get
    )
    assert value(after, "spoon_engine_call_seconds_count", call=get) >= value(
        after, "spoon_engine_calls_total", call=get
    )
    assert value(after, "spoon_reap_passes_total") == value(before, "spoon_reap_passes_total") + 1
    assert value(after, "spoon_reap_pass_seconds_count") >= 1
    assert box.container_name  # the box the figures are about came up
    # Every state and kind is there, zero or not, so a graph never has holes.
    for kind in Lease.Kind.values:
        assert ("spoon_leases", frozenset({"kind": kind}.items())) in after


def test_a_down_engine_is_counted_as_errors(token, settings, tmp_path):
    settings.DOCKER_HOST = f"unix://{tmp_path}/no-engine.sock"
    before = scrape()
    with pytest.raises(docker_engine.EngineUnreachable):
        docker_engine.container_state("spoon-box-nobody")
    after = scrape()
    # Found out on connecting, or on the call when a client was already made.
    unreachable = [
        sum(v for (name, labels), v in found.items()
            if name == "spoon_engine_errors_total" and ("error", "EngineUnreachable") in labels)
        for found in (before, after)
    ]  # fmt: skip
    assert unreachable[1] == unreachable[0] + 1


def test_processes_sharing_a_metrics_directory_are_added_up(token, engine, tmp_path, monkeypatch):
    """Two reaper processes and the web process that answers, as on a host
    with PROMETHEUS_MULTIPROC_DIR set for all of them."""
    env = spoon_process_env(
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "manage.py", "reapboxes"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    found = scrape()
    assert value(found, "spoon_reap_passes_total") == 2
    assert value(found, "spoon_reap_pass_seconds_count") == 2
    assert ("spoon_boxes", frozenset({"state": "running"}.items())) in found
