"""Operators see whose keys there are and when each was last used; keys are
added and deleted by their users."""

from django.contrib import admin

from ssh.models import SshKey


@admin.register(SshKey)
class SshKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "kind", "fingerprint", "created_at", "last_used_at")
    search_fields = ("name", "user__username", "fingerprint")
    fields = ("user", "name", "kind", "bits", "fingerprint", "created_at", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
