from django.apps import AppConfig


class DotfilesConfig(AppConfig):
    name = "dotfiles"
    verbose_name = "Dotfiles and secrets"

    def ready(self):
        from dotfiles import hooks  # noqa: F401  (connects to the boxes' signals)
