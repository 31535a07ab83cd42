import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand

from ssh import gateway


class Command(BaseCommand):
    help = "Serve SSH into users' boxes on SPOON_SSH_BIND:SPOON_SSH_PORT (public keys only)."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=settings.SPOON_SSH_BIND)
        parser.add_argument("--port", type=int, default=settings.SPOON_SSH_PORT)

    def handle(self, *args, bind, port, **options):
        asyncio.run(self.serve(bind, port))

    async def serve(self, bind: str, port: int) -> None:
        acceptor = await gateway.serve(bind, port)
        self.stdout.write(f"sshgateway: serving SSH on {bind}:{port}", ending="\n")
        self.stdout.flush()
        await acceptor.wait_closed()
