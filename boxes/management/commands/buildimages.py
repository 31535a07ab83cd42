from django.core.management.base import BaseCommand, CommandError

from boxes import docker_engine, images, stacks


class Command(BaseCommand):
    help = (
        "Build the base and job images, then the stack images (images/stacks) on the job "
        "image and register them; whatever is up to date is skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="rebuild even when current")
        parser.add_argument("--no-stacks", action="store_true", help="only the base and job images")

    def handle(self, *args, force=False, no_stacks=False, **options):
        try:
            images.ensure_images(force=force, log=self.stdout.write)
            if not no_stacks:
                stacks.ensure_stacks(force=force, log=self.stdout.write)
        except (images.ImageBuildError, docker_engine.EngineError) as exc:
            raise CommandError(str(exc)) from exc
