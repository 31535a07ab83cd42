"""The first account, so a fresh install can be logged into at once."""

import secrets

from django.contrib.auth import get_user_model

FIRST_USERNAME = "admin"


def create_first_user() -> tuple[str, str] | None:
    """Create a superuser with a random password when no user exists yet.

    Returns (username, password) when one was made. The password is shown
    once and never written anywhere; `manage.py changepassword` resets it.
    """
    User = get_user_model()
    if User.objects.exists():
        return None
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser(FIRST_USERNAME, email="", password=password)
    return FIRST_USERNAME, password
