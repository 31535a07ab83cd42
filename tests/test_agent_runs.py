"""Coding-agent turns with a stand-in agent (no model service is reachable
here): an image layer on the job image whose script prints the real event
shapes."""

import hashlib
import re
import textwrap

import pytest
from django.core.exceptions import ValidationError

from boxes import docker_engine, lifecycle
from boxes.models import RegisteredImage
from tests.support import one_builder
from tests.waits import until
from workspaces import credentials, folders, runs
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
    *hang*) echo 'Reconnecting... 1/5 (stream disconnected before completion)'; sleep 600 ;;
    *) item="{\"type\":\"agent_message\",\"text\":\"did: $1\"}"
       echo "{\"type\":\"item.completed\",\"item\":$item}" ;;
    esac
    echo 'not json at all'
    """
).lstrip()


@pytest.fixture(scope="module")
def agent_image(engine, tmp_path_factory):
    """The job image with the stand-in agent; built again only when either
    changed, and kept (other test processes may be using it)."""
    from django.conf import settings

    ref = "spoon-test-agent:1"
    wanted = {
        "spoon.test": "agent",
        "spoon.test-context": hashlib.sha256(STAND_IN.encode()).hexdigest(),
        "spoon.test-base": docker_engine.image_id(settings.SPOON_JOB_IMAGE) or "",
    }
    with one_builder():
        labels = docker_engine.image_labels(ref) or {}
        if any(labels.get(key) != value for key, value in wanted.items()):
            context = tmp_path_factory.mktemp("agent-image")
            (context / "spoon-test-agent").write_text(STAND_IN)
            (context / "spoon-test-agent").chmod(0o755)
            (context / "Dockerfile").write_text(
                f"FROM {settings.SPOON_JOB_IMAGE}\nCOPY spoon-test-agent /usr/local/bin/\n"
            )
            docker_engine.build_image(context, ref, {}, wanted, log=lambda line: None)
    return ref


def printed(run, text: str) -> None:
    """Wait until the run's stored output holds text."""
    until(
        lambda: run.refresh_from_db() or text in run.output,
        lambda _: f"never printed {text!r}: {run.status} {run.error} {run.output[-300:]!r}",
    )


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


def test_a_running_turns_transcript_is_read_from_its_output_not_rewritten(
    workspace, stand_in, wait_for_run
):
    run = runs.start_agent_turn(workspace, "hang please", agent=stand_in)
    printed(run, "Reconnecting")
    assert run.transcript == [], "not written while it runs"
    assert "$ ls" in [entry["text"] for entry in run.transcript_so_far()]
    runs.cancel_run(run)
    run = wait_for_run(run)
    assert "$ ls" in [entry["text"] for entry in run.transcript], "written once, at the end"


def test_a_failed_turn_is_the_runs_error(workspace, stand_in, wait_for_run):
    run = wait_for_run(runs.start_agent_turn(workspace, "please fail", agent=stand_in))
    assert run.status == Run.Status.FAILED
    assert run.error == "the model refused"


def test_a_silent_agent_is_ended_at_its_silence_limit(
    workspace, stand_in, settings, sh, wait_for_run
):
    settings.SPOON_AGENT_SILENCE_SECONDS = 2
    run = wait_for_run(runs.start_agent_turn(workspace, "hang please", agent=stand_in))
    assert run.status == Run.Status.FAILED
    assert run.error == (
        "Ended inside the box: it printed nothing for 2 seconds, its silence limit "
        "(SPOON_AGENT_SILENCE_SECONDS)."
    )
    assert sh(lifecycle.box_for(workspace.user), "pgrep -f '^sleep 600' || true") == ""


def test_an_agents_own_time_limit_wins(workspace, stand_in, wait_for_run):
    stand_in.timeout_seconds = 3
    stand_in.save()
    run = wait_for_run(runs.start_agent_turn(workspace, "hang please", agent=stand_in))
    assert (
        run.error
        == "Ended inside the box after 3 seconds, its time limit (set on the agent stand-in)."
    )


def test_a_turn_cut_off_by_its_box_says_so_not_the_agents_last_line(
    workspace, stand_in, wait_for_run
):
    run = runs.start_agent_turn(workspace, "hang please", agent=stand_in)
    printed(run, "Reconnecting")  # its last line, before it waits
    lifecycle.stop_box(lifecycle.box_for(workspace.user))
    run = wait_for_run(run)
    assert (
        run.error == "The command did not finish: its box was stopped by an operator while it ran."
    )


@pytest.fixture
def keyed(stand_in):
    """The stand-in, reading its credentials like a real CLI: a secret or a login file."""
    stand_in.secrets, stand_in.login_file = ["STAND_IN_KEY", "OTHER_KEY"], ".stand-in/auth.json"
    stand_in.save()
    return stand_in


def test_a_turn_without_credentials_fails_before_the_agent_starts(
    workspace, keyed, sh, wait_for_run
):
    run = wait_for_run(runs.start_agent_turn(workspace, "hello", agent=keyed))
    assert run.status == Run.Status.FAILED
    assert run.error == (
        "stand-in needs credentials: a secret named one of STAND_IN_KEY or OTHER_KEY (add it "
        "on the Secrets page, /settings/secrets/), or a login in your box (~/.stand-in/auth.json)."
    )
    assert run.output == "" and run.transcript == [], "the agent never ran"

    box = lifecycle.box_for(workspace.user)
    sh(box, "mkdir -p ~/.stand-in && echo token > ~/.stand-in/auth.json")
    run = wait_for_run(runs.start_agent_turn(workspace, "hello", agent=keyed))
    assert run.status == Run.Status.SUCCEEDED, "a login made in the box counts"


def test_a_secret_the_agent_reads_is_credentials(workspace, keyed, wait_for_run):
    from dotfiles.models import Secret

    secret = Secret(user=workspace.user, name="OTHER_KEY")
    secret.value = "k-1"
    secret.save()
    run = wait_for_run(runs.start_agent_turn(workspace, "hello", agent=keyed))
    assert run.status == Run.Status.SUCCEEDED, run.error


def test_an_agent_without_a_login_file_is_refused_at_once(workspace, keyed):
    from django.test import Client

    keyed.login_file = ""
    keyed.save()
    with pytest.raises(
        credentials.NoCredentials, match="a secret named one of STAND_IN_KEY or OTHER_KEY"
    ):
        runs.start_agent_turn(workspace, "hello", agent=keyed)
    client = Client()
    client.force_login(workspace.user)
    answer = client.post(
        f"/api/workspaces/{workspace.pk}/runs/",
        {"prompt": "hello", "agent": "stand-in"},
        content_type="application/json",
    )
    assert answer.status_code == 400 and answer.json()["field"] == "agent"
    assert not Run.objects.filter(workspace=workspace).exists()


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


@pytest.mark.both_databases
def test_the_built_in_agents_are_registered():
    from importlib import import_module

    from django.apps import apps

    # Other tests' flushes empty the table: put the migrations' rows back.
    import_module("workspaces.migrations.0002_builtin_agents").add(apps, None)
    import_module("workspaces.migrations.0006_agent_limits_and_credentials").declare(apps, None)
    codex = Agent.objects.get(name="codex")
    assert (codex.secrets, codex.login_file) == (["CODEX_API_KEY"], ".codex/auth.json")
    assert "ANTHROPIC_API_KEY" in Agent.objects.get(name="opencode").secrets
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
