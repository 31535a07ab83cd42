"""Public keys as users paste them: parsed, checked and fingerprinted the way
ssh-keygen shows them, each refusal a sentence that says what to do."""

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from django.core.exceptions import ValidationError

MIN_RSA_BITS = 2048
MAX_KEY_CHARACTERS = 16 * 1024  # an RSA key of 16384 bits is under 3 KB
KINDS = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
         "ssh-rsa")  # fmt: skip
MAKE_ONE = "Make one with: ssh-keygen -t ed25519"


@dataclass(frozen=True)
class PublicKey:
    kind: str
    bits: int
    public_key: str  # "<kind> <base64>", without the comment
    fingerprint: str
    comment: str


def refused(message: str) -> ValidationError:
    error = ValidationError(message)
    error.field = "public_key"
    return error


def fingerprint(blob: bytes) -> str:
    """SHA256:<base64 without padding> of the key's wire form, as ssh-keygen -l says."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse(text: str) -> PublicKey:
    """The one public key in text (an id_*.pub file's line). Raises
    ValidationError (field public_key) for anything else."""
    text = (text or "").strip()
    if not text:
        raise refused(f"Paste a public key: the line in your ~/.ssh/id_ed25519.pub. {MAKE_ONE}")
    if "PRIVATE KEY" in text:
        raise refused(
            "That is a private key: never paste it anywhere. Paste the public one, "
            "the line in the matching .pub file."
        )
    if len(text) > MAX_KEY_CHARACTERS:
        raise refused("That is too long for a public key: paste the one line of a .pub file.")
    if "\n" in text or "\r" in text:
        raise refused("Paste one key at a time: one line, from a .pub file.")
    kind, _, rest = text.partition(" ")
    encoded, _, comment = rest.strip().partition(" ")
    if kind.startswith("sk-"):
        raise refused(
            "Security-key (FIDO) keys are not supported yet: use an ed25519 key. " + MAKE_ONE
        )
    if kind not in KINDS:
        raise refused(
            f"Keys of type {kind[:40]!r} are not accepted: use ssh-ed25519 (best), "
            f"ecdsa-sha2-nistp256/384/521, or ssh-rsa of {MIN_RSA_BITS} bits or more. " + MAKE_ONE
        )
    try:
        blob = base64.b64decode(encoded, validate=True)
        key = load_ssh_public_key(f"{kind} {encoded}".encode())
    except (binascii.Error, ValueError, TypeError):
        raise refused(
            "That is not a valid public key: copy the whole line of the .pub file."
        ) from None
    bits = _bits(key)
    if isinstance(key, rsa.RSAPublicKey) and bits < MIN_RSA_BITS:
        raise refused(
            f"This RSA key has {bits} bits, which is too weak: keys of {MIN_RSA_BITS} bits "
            f"or more are accepted. {MAKE_ONE}"
        )
    return PublicKey(kind, bits, f"{kind} {encoded}", fingerprint(blob), comment.strip()[:100])


def _bits(key) -> int:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return 256
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return key.key_size
    return 0
