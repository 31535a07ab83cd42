from django.core.management.base import BaseCommand, CommandError

from dotfiles.rotation import rotate_keys


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored dotfile, secret and repository credential under the first "
        "SPOON_ENCRYPTION_KEYS key."
    )

    def handle(self, *args, **options):
        counts = rotate_keys()
        self.stdout.write(
            f"rotatekeys: {counts['files']} files, {counts['secrets']} secrets and "
            f"{counts['credentials']} repository credentials re-encrypted, "
            f"{counts['current']} already current, {counts['failed']} could not be decrypted"
        )
        if counts["failed"]:
            raise CommandError(
                "Some values decrypt with none of SPOON_ENCRYPTION_KEYS: add back the key they "
                "were encrypted with, then run rotatekeys again."
            )
