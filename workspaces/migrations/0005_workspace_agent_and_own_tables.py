"""Each workspace's agent choice becomes a field of the workspace (it was a
one-to-one side table, WorkspaceAgent), and the moved models' tables and
content types take this app's names (so permissions granted on them and the
admin's history follow). Rows are copied both ways: this migrates back too."""

import django.db.models.deletion
from django.db import migrations, models


def choices_to_field(apps, schema_editor):
    Workspace = apps.get_model("workspaces", "Workspace")
    for choice in apps.get_model("workspaces", "WorkspaceAgent").objects.all():
        Workspace.objects.filter(pk=choice.workspace_id).update(agent_id=choice.agent_id)


def field_to_choices(apps, schema_editor):
    WorkspaceAgent = apps.get_model("workspaces", "WorkspaceAgent")
    Workspace = apps.get_model("workspaces", "Workspace")
    for workspace in Workspace.objects.exclude(agent=None):
        WorkspaceAgent.objects.create(workspace_id=workspace.pk, agent_id=workspace.agent_id)


MOVED = (("boxes", "workspace"), ("terminal", "spentticket"))


def content_types_here(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for app_label, model in MOVED:
        if not ContentType.objects.filter(app_label="workspaces", model=model).exists():
            ContentType.objects.filter(app_label=app_label, model=model).update(
                app_label="workspaces"
            )


def content_types_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for app_label, model in MOVED:
        if not ContentType.objects.filter(app_label=app_label, model=model).exists():
            ContentType.objects.filter(app_label="workspaces", model=model).update(
                app_label=app_label
            )


class Migration(migrations.Migration):
    dependencies = [
        ("workspaces", "0004_workspace_and_spent_ticket_move_here"),
        ("boxes", "0004_workspace_moves_to_workspaces"),
        ("terminal", "0002_spent_ticket_moves_to_workspaces"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelTable(name="workspace", table=None),
        migrations.AlterModelTable(name="spentticket", table=None),
        migrations.RunPython(content_types_here, content_types_back),
        migrations.AddField(
            model_name="workspace",
            name="agent",
            field=models.ForeignKey(
                blank=True,
                help_text="The agent its turns use unless a run names another; "
                "empty means codex.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="workspaces",
                to="workspaces.agent",
            ),
        ),
        migrations.RunPython(choices_to_field, field_to_choices),
        migrations.DeleteModel(name="WorkspaceAgent"),
    ]
