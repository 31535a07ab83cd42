"""Schema changes keep what users had."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

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
