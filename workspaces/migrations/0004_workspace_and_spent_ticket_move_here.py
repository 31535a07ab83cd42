"""Workspace (from boxes) and SpentTicket (from terminal) become this app's
models. Only Django's idea of them moves here; their tables and rows stay
as they are (0005 renames the tables)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workspaces", "0003_worktrees"),
        ("boxes", "0003_lease_kind_dotfiles"),
        ("terminal", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Workspace",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("spoon", models.CharField(max_length=64)),
                        ("branch", models.CharField(max_length=200)),
                        ("repo_url", models.CharField(blank=True, max_length=500)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "image",
                            models.ForeignKey(
                                blank=True,
                                help_text="This workspace's image; empty means the user's.",
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="workspaces",
                                to="boxes.registeredimage",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="workspaces",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "boxes_workspace",
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("user", "spoon", "branch"),
                                name="one_workspace_per_folder",
                            )
                        ],
                    },
                ),
                migrations.AlterField(
                    model_name="run",
                    name="workspace",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="runs",
                        to="workspaces.workspace",
                    ),
                ),
                migrations.AlterField(
                    model_name="workspaceagent",
                    name="workspace",
                    field=models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="agent_choice",
                        to="workspaces.workspace",
                    ),
                ),
                migrations.CreateModel(
                    name="SpentTicket",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("nonce", models.CharField(max_length=32, unique=True)),
                        ("spent_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                    ],
                    options={"db_table": "terminal_spentticket"},
                ),
            ],
            database_operations=[],
        ),
    ]
