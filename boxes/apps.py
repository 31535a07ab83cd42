from django.apps import AppConfig


class BoxesConfig(AppConfig):
    name = "boxes"
    verbose_name = "Boxes"
