"""Operators see which ports are shared and how, never a public link's token."""

from django.contrib import admin

from previews.models import PortShare


@admin.register(PortShare)
class PortShareAdmin(admin.ModelAdmin):
    list_display = ("box", "port", "sharing", "updated_at")
    list_filter = ("sharing",)
    search_fields = ("box__username",)
    fields = ("box", "port", "sharing", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
