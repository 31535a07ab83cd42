"""Names that end up inside boxes: Linux user names and workspace folders."""

import re
import unicodedata

from django.core.exceptions import ValidationError

LINUX_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# Users and groups the job image (Debian or Fedora) has already, and names
# that would read as Spoon's own.
RESERVED = frozenset(
    "root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc "
    "gnats nobody nogroup _apt systemd-network systemd-resolve systemd-timesync messagebus "
    "sshd adm tty disk kmem dialout cdrom floppy tape sudo audio dip video plugdev staff "
    "users operator shadow utmp wheel ftp halt shutdown tss polkitd input render sgx kvm "
    "spoon docker".split()
)
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def validate_linux_name(name: str) -> None:
    if not LINUX_NAME.match(name) or name in RESERVED:
        raise ValidationError(f"{name!r} is not a usable Linux user name.")


def linux_name(django_username: str, max_length: int = 32) -> str:
    """A valid, unreserved Linux user name that reads like the Django one."""
    ascii_name = (
        unicodedata.normalize("NFKD", django_username).encode("ascii", "ignore").decode().lower()
    )
    name = re.sub(r"[^a-z0-9_-]+", "-", ascii_name).strip("-")
    name = re.sub(r"^[^a-z_]+", "", name)
    name = name[:max_length].rstrip("-") or "user"
    if name in RESERVED:
        name = f"{name[: max_length - 2]}-u"
    return name


def numbered(name: str, number: int) -> str:
    """name-2, name-3, ... kept within 32 characters."""
    suffix = f"-{number}"
    return name[: 32 - len(suffix)].rstrip("-") + suffix


def validate_workspace_names(spoon: str, branch: str) -> None:
    """A spoon is one path segment; a branch may hold '/' between segments."""
    if not SEGMENT.match(spoon) or ".." in spoon:
        raise ValidationError(
            f"Spoon name {spoon!r}: use letters, digits, '.', '_' or '-', starting with a "
            "letter or digit, at most 64 characters."
        )
    segments = branch.split("/")
    if len(branch) > 200 or not all(SEGMENT.match(s) and ".." not in s for s in segments):
        raise ValidationError(
            f"Branch {branch!r}: segments of letters, digits, '.', '_' or '-' separated by '/', "
            "each starting with a letter or digit, no '..', at most 200 characters."
        )
    if branch.endswith(".lock") or any(s.endswith(".") for s in segments):
        raise ValidationError(f"Branch {branch!r} is not a valid git branch name.")
