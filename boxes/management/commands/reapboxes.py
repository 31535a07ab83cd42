from django.core.management.base import BaseCommand, CommandError

from boxes import docker_engine, reaper


class Command(BaseCommand):
    help = "Stop idle boxes (homes are kept) and reconcile rows with the engine."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="say what would be done")
        parser.add_argument(
            "--idle-seconds", type=int, help="idle time before a stop (SPOON_BOX_IDLE_SECONDS)"
        )

    def handle(self, *args, dry_run=False, idle_seconds=None, **options):
        try:
            report = reaper.reap(idle_seconds=idle_seconds, dry_run=dry_run)
        except docker_engine.EngineError as exc:
            raise CommandError(str(exc)) from exc
        for line in report.lines:
            self.stdout.write(line)
        self.stdout.write(report.summary())
