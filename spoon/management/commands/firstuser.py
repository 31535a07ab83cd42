from django.core.management.base import BaseCommand

from spoon.first_user import create_first_user


class Command(BaseCommand):
    help = "Create the first (staff) user with a random password when there is none."

    def handle(self, *args, **options):
        created = create_first_user()
        if created is None:
            self.stdout.write("Users exist already; no first user made.")
            return
        username, password = created
        self.stdout.write(
            self.style.SUCCESS(f"First user: {username}  password: {password}")
            + "\n(shown only this once; reset it with `manage.py changepassword "
            + f"{username}`)"
        )
