from django.contrib import admin
from django.db.models import Count

from boxes import audit
from boxes.admin import RegisteredImageAdmin
from boxes.models import RegisteredImage, StaffAction
from workspaces.models import Agent, Run, Workspace


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("__str__", "user", "repo_url", "image", "agent", "created_at")
    list_select_related = ("user", "image", "agent")
    search_fields = ("spoon", "branch", "user__username", "repo_url")
    readonly_fields = ("user", "spoon", "branch", "repo_url", "created_at")

    def has_add_permission(self, request):
        return False  # made inside the box by workspaces.folders.create_workspace

    def save_model(self, request, obj, form, change):
        old = Workspace.objects.filter(pk=obj.pk).values("image__name", "agent__name").first()
        super().save_model(request, obj, form, change)
        now = {
            "image__name": obj.image and obj.image.name,
            "agent__name": obj.agent and obj.agent.name,
        }
        changes = [
            f"{field.split('__')[0]} {old[field] or 'default'} -> {now[field] or 'default'}"
            for field in now
            if old and old[field] != now[field]
        ]
        if changes:
            detail = f"the workspace {obj}: " + "; ".join(changes)
            audit.changed(request.user, StaffAction.What.WORKSPACE, detail, owner=obj.user)


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    """Agents decide what runs in users' boxes: every change is recorded and
    shown to the users."""

    list_display = ("name", "argv", "image", "secrets", "timeout_seconds", "silence_seconds")
    RECORDED = ("argv", "image", "secrets", "login_file")

    def save_model(self, request, obj, form, change):
        old = Agent.objects.filter(pk=obj.pk).values(*self.RECORDED).first() or {}
        super().save_model(request, obj, form, change)
        changes = [
            f"{field} {old.get(field)!r} -> {getattr(obj, field)!r}"
            for field in self.RECORDED
            if old.get(field) != getattr(obj, field)
        ]
        if changes:
            verb = "changed" if old else "added"
            detail = f"{verb} the agent {obj.name}: " + "; ".join(changes)
            audit.changed(request.user, StaffAction.What.AGENT, detail)


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("pk", "workspace", "agent", "status", "exit_code", "created_at", "finished_at")
    list_filter = ("status", "agent")
    readonly_fields = [f.name for f in Run._meta.fields]

    def has_add_permission(self, request):
        return False


class ImagesWithTheirWorkspacesAdmin(RegisteredImageAdmin):
    """Boxes' image list, plus how many workspaces use each image (one that
    any workspace uses cannot be deleted)."""

    list_display = (*RegisteredImageAdmin.list_display, "used_by")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(workspace_count=Count("workspaces"))

    @admin.display(description="workspaces", ordering="workspace_count")
    def used_by(self, image):
        return image.workspace_count


admin.site.unregister(RegisteredImage)
admin.site.register(RegisteredImage, ImagesWithTheirWorkspacesAdmin)
