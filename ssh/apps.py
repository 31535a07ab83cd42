from django.apps import AppConfig


class SshConfig(AppConfig):
    name = "ssh"
    verbose_name = "SSH"
