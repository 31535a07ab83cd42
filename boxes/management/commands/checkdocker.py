from django.core.management.base import BaseCommand, CommandError

from boxes import health


class Command(BaseCommand):
    help = "Report whether the Docker Engine answers and holds the job image."

    def handle(self, *args, **options):
        status = health.engine_status()
        self.stdout.write(f"engine:  {status['version'] or 'unreachable'}")
        self.stdout.write(
            f"image:   {status['image']} ({'present' if status['image_present'] else 'missing'})"
        )
        if not health.is_ok(status):
            raise CommandError(status["error"])
        self.stdout.write(self.style.SUCCESS("ok"))
