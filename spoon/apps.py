from django.apps import AppConfig


class SpoonConfig(AppConfig):
    name = "spoon"
    verbose_name = "Spoon"

    def ready(self):
        from spoon import converters

        converters.register()
