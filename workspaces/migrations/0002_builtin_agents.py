from django.db import migrations

# The CLIs the job image carries (images/job/Dockerfile pins their versions).
BUILT_IN = {
    "codex": ["codex", "exec", "--json", "--skip-git-repo-check", "{prompt}"],
    "opencode": ["opencode", "run", "--format", "json", "{prompt}"],
}


def add(apps, schema_editor):
    Agent = apps.get_model("workspaces", "Agent")
    for name, argv in BUILT_IN.items():
        Agent.objects.get_or_create(name=name, defaults={"argv": argv})


def remove(apps, schema_editor):
    apps.get_model("workspaces", "Agent").objects.filter(name__in=BUILT_IN).delete()


class Migration(migrations.Migration):
    dependencies = [("workspaces", "0001_initial")]
    operations = [migrations.RunPython(add, remove)]
