from django.core.management.base import BaseCommand, CommandError

from boxes import docker_engine, images


class Command(BaseCommand):
    help = "Pull SPOON_JOB_IMAGE (tag or digest) from its registry and check it is present."

    def handle(self, *args, **options):
        try:
            images.pull_job_image(log=self.stdout.write)
        except (images.ImageBuildError, docker_engine.EngineError) as exc:
            raise CommandError(str(exc)) from exc
