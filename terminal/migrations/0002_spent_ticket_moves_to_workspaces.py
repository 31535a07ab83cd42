"""SpentTicket now belongs to the workspaces app, beside the tickets it
spends (see its 0004); its table and rows stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("terminal", "0001_initial"),
        ("workspaces", "0004_workspace_and_spent_ticket_move_here"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="SpentTicket")],
            database_operations=[],
        ),
    ]
