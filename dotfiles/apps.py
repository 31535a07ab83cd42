from django.apps import AppConfig


class DotfilesConfig(AppConfig):
    name = "dotfiles"
