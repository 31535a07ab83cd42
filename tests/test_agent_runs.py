"""Coding-agent turns with a stand-in agent (no model service is reachable
here): an image layer on the job image whose script prints the real event
shapes."""

import re
import textwrap

import pytest
from django.core.exceptions import ValidationError

from boxes import docker_engine
from boxes.models import RegisteredImage
from workspaces import folders, runs
from workspaces.models import Agent, Run, Workspace

pytestmark = pytest.mark.django_db(transaction=True)

STAND_IN = textwrap.dedent(
    r"""
    #!/bin/sh
    # Prints what codex --json prints; "fail" in the prompt fails the turn,
    # "legacy" uses the old shape that wraps each event in "msg".
    echo '{"type":"thread.started","thread_id":"t"}'
    echo '{"type":"item.started","item":{"type":"command_execution","command":"ls"}}'
    case "$1" in
    *legacy*) echo '{"id":"1","msg":{"type":"agent_message","message":"legacy hello"}}' ;;
    *fail*) echo '{"type":"turn.failed","error":{"message":"the model refused"}}'; exit 1 ;;
    *) item="{\"type\":\"agent_message\",\"text\":\"did: $1\"}"
       echo "{\"type\":\"item.completed\",\"item\":$item}" ;;
    esac
    echo 'not json at all'
    """
).lstrip()


@pytest.fixture(scope="module")
def agent_image(engine, tmp_path_factory):
    from django.conf import settings

    context = tmp_path_factory.mktemp("agent-image")
    (context / "spoon-test-agent").write_text(STAND_IN)
    (context / "spoon-test-agent").chmod(0o755)
    (context / "Dockerfile").write_text(
        f"FROM {settings.SPOON_JOB_IMAGE}\nCOPY spoon-test-agent /usr/local/bin/\n"
    )
    ref = "spoon-test-agent:1"
    docker_engine.build_image(context, ref, {}, {"spoon.test": "agent"}, log=lambda line: None)
    yield ref
    docker_engine.remove_image(ref)


@pytest.fixture
def stand_in(agent_image):
    return Agent.objects.create(
        name="stand-in", argv=["spoon-test-agent", "{prompt}"], image=agent_image
    )


def test_a_turn_becomes_a_readable_transcript(workspace, stand_in, wait_for_run):
    run = wait_for_run(runs.start_agent_turn(workspace, "tidy the tests", agent=stand_in))
    assert run.status == Run.Status.SUCCEEDED, (run.error, run.output)
    kinds = [(e["kind"], e["text"]) for e in run.transcript]
    assert ("command", "$ ls") in kinds
    assert ("message", "did: tidy the tests") in kinds
    assert ("raw", "not json at all") in kinds


def test_a_failed_turn_is_the_runs_error(workspace, stand_in, wait_for_run):
    run = wait_for_run(runs.start_agent_turn(workspace, "please fail", agent=stand_in))
    assert run.status == Run.Status.FAILED
    assert run.error == "the model refused"


def test_the_legacy_shape_is_understood(workspace, stand_in, wait_for_run):
    run = wait_for_run(runs.start_agent_turn(workspace, "legacy please", agent=stand_in))
    assert ("message", "legacy hello") in [(e["kind"], e["text"]) for e in run.transcript]


def test_the_workspaces_agent_is_used_and_the_image_is_checked_first(
    workspace, stand_in, wait_for_run
):
    folders.choose_agent(workspace, stand_in)
    run = wait_for_run(runs.start_agent_turn(workspace, "hello"))
    assert run.agent == stand_in and run.image == stand_in.image
    with pytest.raises(ValidationError, match="spoon-test-missing:none"):
        missing = RegisteredImage.objects.create(name="missing", ref="spoon-test-missing:none")
        runs.start_agent_turn(workspace, "x", agent=stand_in, image=missing)
    assert not Run.objects.filter(image="spoon-test-missing:none").exists(), "refused before it ran"


def test_the_built_in_agents_are_registered():
    from importlib import import_module

    from django.apps import apps

    # Other tests' flushes empty the table: put the migration's rows back.
    import_module("workspaces.migrations.0002_builtin_agents").add(apps, None)
    assert {a.name for a in Agent.objects.all()} >= {"codex", "opencode"}
    assert Agent.objects.get(name="codex").command("hi") == [
        "codex", "exec", "--json", "--skip-git-repo-check", "hi",
    ]  # fmt: skip


def test_users_choose_a_workspaces_agent_on_its_page(workspace, stand_in, make_user, wait_for_run):
    from django.test import Client

    client = Client()
    client.force_login(workspace.user)
    url = f"/workspaces/{workspace.pk}/agent"
    page = client.get(f"/workspaces/{workspace.pk}/").content.decode()
    assert 'value="stand-in"' in page and not re.search(r'value="stand-in"\s+selected', page)
    client.post(url, {"agent": "stand-in"})
    assert Workspace.objects.get(pk=workspace.pk).agent == stand_in
    page = client.get(f"/workspaces/{workspace.pk}/").content.decode()
    assert re.search(r'value="stand-in"\s+selected', page)
    workspace.refresh_from_db()  # the choice is a field of the workspace now
    assert wait_for_run(runs.start_agent_turn(workspace, "hi")).agent == stand_in

    refused = client.post(url, {"agent": "nobody"}, follow=True)
    assert "No agent &#x27;nobody&#x27;." in refused.content.decode()
    assert Workspace.objects.get(pk=workspace.pk).agent == stand_in, "kept"
    client.post(url, {"agent": ""})
    assert Workspace.objects.get(pk=workspace.pk).agent is None

    stranger = Client()
    stranger.force_login(make_user())
    assert stranger.post(url, {"agent": "stand-in"}).status_code == 404
