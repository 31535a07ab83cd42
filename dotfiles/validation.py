"""What users may type into dotfiles and secrets: each rule says what is wrong."""

import re
import urllib.parse

from django.conf import settings
from django.core.exceptions import ValidationError

MAX_PATH_LENGTH = 255
MAX_PATH_DEPTH = 16
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Names the shell and Spoon set themselves: a secret must not replace them.
RESERVED_ENV = frozenset("HOME USER LOGNAME SHELL PATH PWD TERM LANG SPOON_USER".split())
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")


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
    if not url:
        return url
    if url.startswith("-") or any(c.isspace() or ord(c) < 32 for c in url):
        raise ValidationError("A repository URL cannot start with '-' or hold spaces.")
    parsed = urllib.parse.urlsplit(url)
    allowed = settings.SPOON_DOTFILES_URL_SCHEMES
    if parsed.scheme not in allowed:
        raise ValidationError(f"The repository URL must start with {' or '.join(allowed)}://.")
    if parsed.username or parsed.password:
        raise ValidationError("Put no credentials in the repository URL: it must be public.")
    if parsed.scheme != "file" and not parsed.hostname:
        raise ValidationError("The repository URL has no host.")
    return url


def ref(value: str) -> str:
    if value and (not REF.match(value) or ".." in value or value.endswith((".lock", "/"))):
        raise ValidationError(
            "A ref is a branch or tag name: letters, digits, '.', '_', '-', '/', "
            "not starting with '-', without '..'."
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
