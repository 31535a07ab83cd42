"""Operators see paths, sizes and run logs; never decrypted contents, secret
values, tokens or private keys."""

from django.contrib import admin

from dotfiles.models import DotfilesConfig, DotfilesRun, OverlayFile, Secret


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OverlayFile)
class OverlayFileAdmin(ReadOnly):
    list_display = ("path", "user", "size", "executable", "updated_at")
    search_fields = ("path", "user__username")
    fields = ("user", "path", "size", "executable", "updated_at")


@admin.register(Secret)
class SecretAdmin(ReadOnly):
    list_display = ("name", "user", "updated_at")
    search_fields = ("name", "user__username")
    fields = ("user", "name", "updated_at")


@admin.register(DotfilesConfig)
class DotfilesConfigAdmin(ReadOnly):
    list_display = ("user", "enabled", "repo_url", "ref", "access", "updated_at")
    list_filter = ("access",)
    search_fields = ("user__username", "repo_url")
    # The token and private key stay out: operators see which access, and the public key.
    fields = (
        "user", "enabled", "repo_url", "ref", "setup_path", "setup_args",
        "access", "token_username", "deploy_key_public", "updated_at",
    )  # fmt: skip


@admin.register(DotfilesRun)
class DotfilesRunAdmin(ReadOnly):
    list_display = ("user", "trigger", "status", "exit_code", "started_at", "finished_at")
    list_filter = ("status", "trigger")
    search_fields = ("user__username",)
    fields = ("user", "trigger", "status", "exit_code", "steps", "log", "started_at", "finished_at")
