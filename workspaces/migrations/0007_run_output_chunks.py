from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    dependencies = [("workspaces", "0006_agent_limits_and_credentials")]

    operations = [
        migrations.RenameField("run", "output", "recorded_output"),
        migrations.CreateModel(
            name="RunChunk",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("seq", models.PositiveIntegerField()),
                ("text", models.TextField()),
                ("run", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="chunks", to="workspaces.run")),
            ],
            options={"ordering": ["run", "seq"]},
        ),
        migrations.AddConstraint(
            model_name="runchunk",
            constraint=models.UniqueConstraint(fields=("run", "seq"), name="one_chunk_per_seq"),
        ),
    ]
