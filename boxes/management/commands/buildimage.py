from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from boxes import docker_engine, images, stacks


class Command(BaseCommand):
    help = (
        "Build a custom image from a registered image plus Debian packages, through the "
        "Docker API, and register it under NAME for users to pick."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="the registered name (and tag: spoon-custom:NAME)")
        parser.add_argument(
            "--from",
            dest="base",
            default="",
            metavar="IMAGE",
            help="a registered image's name; the job image when left out",
        )
        parser.add_argument(
            "--packages", nargs="+", required=True, metavar="PACKAGE", help="Debian packages"
        )

    def handle(self, *args, name, base, packages, **options):
        # "a b" and "a,b" read as two packages, as people type them.
        names = [p for value in packages for p in value.replace(",", " ").split()]
        try:
            image = stacks.build_custom(name, names, base_name=base, log=self.stdout.write)
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from exc
        except (images.ImageBuildError, docker_engine.EngineError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Registered {image.name}: {image.ref}")
