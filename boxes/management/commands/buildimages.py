from django.core.management.base import BaseCommand, CommandError

from boxes import docker_engine, images


class Command(BaseCommand):
    help = "Build the base and job images, skipping what is up to date."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="rebuild even when current")

    def handle(self, *args, force=False, **options):
        try:
            images.ensure_images(force=force, log=self.stdout.write)
        except (images.ImageBuildError, docker_engine.EngineError) as exc:
            raise CommandError(str(exc)) from exc
