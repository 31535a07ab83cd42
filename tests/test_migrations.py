"""Schema changes keep what users had."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.both_databases]

BEFORE = [("boxes", "0001_initial")]
AFTER = [("boxes", "0002_registered_images")]


def test_workspace_image_refs_become_registered_images():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    user = old.get_model("auth", "User").objects.create(username="migrated")
    Workspace = old.get_model("boxes", "Workspace")
    for branch, ref in [("a", "team/tool:1"), ("b", "team/tool:1"), ("c", "Other:2"), ("d", "")]:
        Workspace.objects.create(user=user, spoon="s", branch=branch, image=ref)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    images = {w.branch: w.image for w in new.get_model("boxes", "Workspace").objects.all()}
    assert images["a"] == images["b"] and images["a"].ref == "team/tool:1"
    assert images["a"].name == "team-tool-1" and not images["a"].offered
    assert images["c"].ref == "Other:2" and images["d"] is None

    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


BEFORE_THE_MOVE = [
    ("boxes", "0003_lease_kind_dotfiles"),
    ("workspaces", "0003_worktrees"),
    ("terminal", "0001_initial"),
]


def test_workspaces_move_to_their_app_with_their_runs_agent_choices_and_tickets():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_THE_MOVE)
    old = executor.loader.project_state(BEFORE_THE_MOVE).apps
    user = old.get_model("auth", "User").objects.create(username="moving")
    image = old.get_model("boxes", "RegisteredImage").objects.create(name="py", ref="py:1")
    agent = old.get_model("workspaces", "Agent").objects.create(name="a", argv=["a", "{prompt}"])
    OldWorkspace = old.get_model("boxes", "Workspace")
    chosen = OldWorkspace.objects.create(user=user, spoon="s", branch="a", image=image)
    OldWorkspace.objects.create(user=user, spoon="s", branch="b", repo_url="https://x/y")
    old.get_model("workspaces", "WorkspaceAgent").objects.create(workspace=chosen, agent=agent)
    old.get_model("workspaces", "Run").objects.create(workspace=chosen, argv=["true"], token="m1")
    old.get_model("terminal", "SpentTicket").objects.create(nonce="n" * 32)
    workspace_type, _ = ContentType.objects.get_or_create(app_label="boxes", model="workspace")

    def migrate(targets):
        executor.loader.build_graph()
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps

    new = migrate(executor.loader.graph.leaf_nodes())
    workspaces = {w.branch: w for w in new.get_model("workspaces", "Workspace").objects.all()}
    assert workspaces["a"].pk == chosen.pk and workspaces["a"].image_id == image.pk
    assert workspaces["a"].agent_id == agent.pk and workspaces["b"].agent_id is None
    assert workspaces["b"].repo_url == "https://x/y"
    assert new.get_model("workspaces", "Run").objects.get(token="m1").workspace_id == chosen.pk
    assert new.get_model("workspaces", "SpentTicket").objects.filter(nonce="n" * 32).exists()
    moved_type = ContentType.objects.get(pk=workspace_type.pk)
    assert moved_type.app_label == "workspaces", "permissions on workspaces follow them"

    back = migrate(BEFORE_THE_MOVE)
    choice = back.get_model("workspaces", "WorkspaceAgent").objects.get()
    assert (choice.workspace_id, choice.agent_id) == (chosen.pk, agent.pk)
    assert back.get_model("boxes", "Workspace").objects.count() == 2
    assert back.get_model("terminal", "SpentTicket").objects.count() == 1

    migrate(executor.loader.graph.leaf_nodes())
