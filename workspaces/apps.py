from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    name = "workspaces"
    verbose_name = "Workspaces and runs"

    def ready(self):
        from workspaces import cleanup  # noqa: F401  (connects to the reaper's signal)
