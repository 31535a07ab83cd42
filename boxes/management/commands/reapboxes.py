from django.core.management.base import BaseCommand, CommandError

from boxes import docker_engine, reaper


class Command(BaseCommand):
    help = "Stop idle boxes (homes are kept) and reconcile rows with the engine."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="say what would be done")
        parser.add_argument(
            "--idle-seconds", type=int, help="idle time before a stop (SPOON_BOX_IDLE_SECONDS)"
        )
        parser.add_argument(
            "--every",
            type=float,
            metavar="SECONDS",
            help="keep running: a pass every SECONDS (a failed pass is reported, never fatal)",
        )

    def handle(self, *args, dry_run=False, idle_seconds=None, every=None, **options):
        if every is not None:
            if dry_run or every <= 0:
                raise CommandError("--every takes a positive number of seconds, without --dry-run.")
            reaper.reap_every(every, self._write_now, idle_seconds=idle_seconds)
            return
        try:
            report = reaper.reap(idle_seconds=idle_seconds, dry_run=dry_run)
        except docker_engine.EngineError as exc:
            raise CommandError(str(exc)) from exc
        for line in report.lines:
            self.stdout.write(line)
        self.stdout.write(report.summary())

    def _write_now(self, line: str) -> None:
        # A service's log should get each line as it comes, not at exit.
        self.stdout.write(line)
        self.stdout.flush()
