"""What users may type into dotfiles and secrets: each rule says what is wrong."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError

from boxes import naming

MAX_PATH_LENGTH = 255
MAX_PATH_DEPTH = 16
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Names the shell and Spoon set themselves: a secret must not replace them.
RESERVED_ENV = frozenset("HOME USER LOGNAME SHELL PATH PWD TERM LANG SPOON_USER".split())


def overlay_path(path: str) -> str:
    """A path relative to the home; returns it normalised or raises."""
    if not isinstance(path, str) or not path:
        raise ValidationError("A path is required.", code="path")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise ValidationError("A path cannot contain NUL, newlines or other control characters.")
    if path.startswith("/") or path.startswith("~"):
        raise ValidationError("Give the path relative to your home, without a leading '/'.")
    if len(path) > MAX_PATH_LENGTH:
        raise ValidationError(f"A path can be at most {MAX_PATH_LENGTH} characters long.")
    segments = path.split("/")
    if any(s == "" for s in segments):
        raise ValidationError("A path cannot have empty parts ('//' or a trailing '/').")
    if any(s in (".", "..") for s in segments):
        raise ValidationError("A path cannot contain '.' or '..' parts.")
    if len(segments) > MAX_PATH_DEPTH:
        raise ValidationError(f"A path can be at most {MAX_PATH_DEPTH} folders deep.")
    if segments[0] == ".spoon":
        raise ValidationError("~/.spoon is Spoon's own; put your files elsewhere.")
    if any(s.startswith("-") for s in segments):
        raise ValidationError("No part of a path can start with '-'.")
    return path


def repo_url(url: str) -> str:
    if url:
        naming.validate_repo_url(url, settings.SPOON_DOTFILES_URL_SCHEMES)
    return url


def ref(value: str) -> str:
    if value:
        naming.validate_git_ref(value, "Branch or tag")
    return value


MAX_SETUP_ARGS = 20


def setup_args(value) -> list[str]:
    """The setup script's arguments: words, each passed as it is."""
    if not isinstance(value, list) or len(value) > MAX_SETUP_ARGS:
        raise ValidationError(
            f"The setup's arguments are a list of at most {MAX_SETUP_ARGS} words."
        )
    for word in value:
        if not isinstance(word, str) or not word or len(word) > 200:
            raise ValidationError("Each setup argument is a word of 1 to 200 characters.")
        if any(ord(c) < 32 or ord(c) == 127 for c in word):
            raise ValidationError("A setup argument cannot hold control characters.")
    return value


TOKEN_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{1,100}$")


def token(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("Paste the token.")
    value = value.strip()
    if len(value) > 1000 or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValidationError("A token is one word of at most 1000 characters, without spaces.")
    return value


def token_username(value: str) -> str:
    if value and not TOKEN_USERNAME.match(value):
        raise ValidationError(
            "The username is letters, digits and . _ @ + -, at most 100 of them (most forges "
            "take any name with a token: leave it empty)."
        )
    return value


def setup_path(value: str) -> str:
    if not value:
        return value
    try:
        overlay_path(value)
    except ValidationError as exc:
        raise ValidationError(
            f"The setup path must be a file inside the repository: {exc.messages[0]}"
        ) from exc
    return value


def secret_name(name: str) -> str:
    if not ENV_NAME.match(name or ""):
        raise ValidationError(
            "A secret's name must be an environment variable name: letters, digits and '_', "
            "not starting with a digit."
        )
    if name in RESERVED_ENV or name.startswith("SPOON_"):
        raise ValidationError(f"{name} is set by Spoon or the shell; choose another name.")
    return name
