from django.contrib import admin

from workspaces.models import Agent, Run, WorkspaceAgent


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("name", "argv", "image")


@admin.register(WorkspaceAgent)
class WorkspaceAgentAdmin(admin.ModelAdmin):
    list_display = ("workspace", "agent")


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("pk", "workspace", "agent", "status", "exit_code", "created_at", "finished_at")
    list_filter = ("status", "agent")
    readonly_fields = [f.name for f in Run._meta.fields]

    def has_add_permission(self, request):
        return False
