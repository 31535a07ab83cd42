"""The Workspace model now belongs to the workspaces app (see its 0004);
its table and rows stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("boxes", "0003_lease_kind_dotfiles"),
        ("workspaces", "0004_workspace_and_spent_ticket_move_here"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Workspace")],
            database_operations=[],
        ),
    ]
