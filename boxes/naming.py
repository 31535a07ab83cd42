"""Names that end up inside boxes or the engine: Linux user names, folder
names, git branches and repository URLs a box clones, image names and
references, Debian package names."""

import re
import unicodedata
import urllib.parse

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
# One folder name, or one part of a branch name.
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")  # git@host:owner/repo.git
# What users pick; it also becomes a tag (spoon-custom:<name>), so it keeps to
# the characters a tag allows.
IMAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# An engine reference: [host[:port]/]path[:tag][@sha256:digest], as docker
# parses it (path components lower-case).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REF = re.compile(
    rf"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
# Debian policy's package names, optionally pinned to a version (name=1.2-3).
DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9.+~:-]+)?$")


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


def validate_git_ref(ref: str, what: str = "Branch") -> None:
    """A branch or tag name that is safe as a folder path too: segments of
    letters, digits, '.', '_' or '-' separated by '/', each starting with a
    letter or digit, no '..', and nothing git refuses ('.lock' or '.' at an end)."""
    segments = ref.split("/")
    if len(ref) > 200 or not all(SEGMENT.match(s) and ".." not in s for s in segments):
        raise ValidationError(
            f"{what} {ref!r}: segments of letters, digits, '.', '_' or '-' separated by '/', "
            "each starting with a letter or digit, no '..', at most 200 characters."
        )
    if ref.endswith(".lock") or any(s.endswith(".") for s in segments):
        raise ValidationError(f"{what} {ref!r} is not a valid git branch or tag name.")


def is_ssh_url(url: str) -> bool:
    """ssh://… or the scp-like git@host:path."""
    return url.startswith("ssh://") or bool(SCP_LIKE.match(url) and "://" not in url)


def validate_repo_url(url: str, schemes) -> None:
    """A repository URL git may clone in a box: one of the allowed schemes
    (with ssh, also the scp-like git@host:path), no credentials (secrets
    live elsewhere), a host, and nothing git would read as an option."""
    if url.startswith("-") or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValidationError("A repository URL cannot start with '-' or hold spaces.")
    if SCP_LIKE.match(url) and "://" not in url:
        if "ssh" not in schemes:
            raise ValidationError(
                f"SSH repository URLs are not allowed here: use {', '.join(schemes)}."
            )
        return
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in schemes:
        raise ValidationError(
            f"Repository URLs must use {', '.join(schemes)}; "
            f"this one uses {parsed.scheme or 'none'}."
        )
    if parsed.password is not None or (parsed.scheme in ("http", "https") and parsed.username):
        raise ValidationError("Put no credentials in the URL; Spoon keeps secrets elsewhere.")
    if parsed.scheme != "file" and not parsed.hostname:
        raise ValidationError("The repository URL has no host.")


def validate_image_name(name: str) -> None:
    if not IMAGE_NAME.match(name):
        raise ValidationError(
            f"Image name {name!r}: lower-case letters, digits, '.', '_' or '-', starting "
            "with a letter or digit, at most 64 characters."
        )


def validate_image_ref(ref: str) -> None:
    if len(ref) > 255 or not IMAGE_REF.match(ref):
        raise ValidationError(
            f"{ref!r} is not an image reference: write it as docker does, such as "
            "debian:bookworm, 127.0.0.1:5000/team/node:20 or name@sha256:<digest>."
        )


def validate_debian_packages(packages: list[str]) -> None:
    if not packages:
        raise ValidationError("Name at least one Debian package.")
    bad = [p for p in packages if not DEBIAN_PACKAGE.match(p)]
    if bad:
        raise ValidationError(
            f"Not Debian package names: {', '.join(map(repr, bad))} (lower-case letters, "
            "digits, '+', '-', '.', optionally =version)."
        )
