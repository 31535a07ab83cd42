from django.apps import AppConfig


class SpoonConfig(AppConfig):
    name = "spoon"
    verbose_name = "Spoon"
