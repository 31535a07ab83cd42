from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from boxes import docker_engine, lifecycle


class Command(BaseCommand):
    help = "Create or start a user's box and print its state."

    def add_arguments(self, parser):
        parser.add_argument("username", help="the Django user name")
        parser.add_argument(
            "--image", default="", help="run this image instead of the resolved one"
        )

    def handle(self, *args, username, image, **options):
        try:
            user = get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"No user {username!r}.") from exc
        try:
            box = lifecycle.ensure_box(user, image=image)
        except (docker_engine.EngineError, lifecycle.BoxError) as exc:
            raise CommandError(str(exc)) from exc
        pending = " (update pending)" if box.update_pending else ""
        self.stdout.write(
            f"{box.container_name}: {box.state}{pending}, image {box.running_image}, "
            f"home {box.home} ({box.volume_name})"
        )
