"""SSH deploy keys for a private dotfiles repository: made here, or pasted
by the user; each answer is the private key in OpenSSH format and its
public half as a forge wants it pasted."""

import base64
import binascii
import hashlib

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.core.exceptions import ValidationError

MAX_KEY_LENGTH = 20_000
MIN_RSA_BITS = 2048
TAKEN = (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)


def generate(comment: str) -> tuple[str, str]:
    """A new Ed25519 key: (private, public)."""
    return _both(ed25519.Ed25519PrivateKey.generate(), comment)


def from_pasted(text: str, comment: str) -> tuple[str, str]:
    """A private key the user pasted (OpenSSH or PEM), checked and
    rewritten in OpenSSH format: (private, public)."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("Paste the private key, from -----BEGIN to its END----- line.")
    if len(text) > MAX_KEY_LENGTH:
        raise ValidationError("That is too long for an SSH private key.")
    data = text.strip().replace("\r\n", "\n").encode() + b"\n"
    if data.startswith((b"ssh-", b"ecdsa-")):
        raise ValidationError(
            "That is a public key. Paste its private half (the file without .pub), or let "
            "Spoon generate a key."
        )
    passphrase = ValidationError(
        "That key has a passphrase, which Spoon could not type at each clone: give it a "
        "key without one (a deploy key only reads this repository)."
    )
    if _has_passphrase(data):
        raise passphrase
    try:
        if data.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----"):
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # cryptography's way of saying "it has a passphrase"
        raise passphrase from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValidationError(
            "That is not an SSH private key Spoon can read: paste an Ed25519, ECDSA or RSA "
            "key, from -----BEGIN to its END----- line."
        ) from exc
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise ValidationError(f"RSA keys need at least {MIN_RSA_BITS} bits.")
    if not isinstance(key, TAKEN):
        raise ValidationError("Spoon takes Ed25519, ECDSA and RSA keys.")
    return _both(key, comment)


def _has_passphrase(data: bytes) -> bool:
    """Read from the key's header, so that it is told apart from a broken
    key even where cryptography could not decrypt it (OpenSSH's bcrypt)."""
    if not data.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----"):
        return b"ENCRYPTED" in data.split(b"\n\n")[0]
    body = b"".join(data.splitlines()[1:-1])
    try:
        blob = base64.b64decode(body)
    except binascii.Error:
        return False
    magic = b"openssh-key-v1\0"
    length = int.from_bytes(blob[len(magic) : len(magic) + 4], "big")
    cipher = blob[len(magic) + 4 : len(magic) + 4 + length]
    return blob.startswith(magic) and cipher not in (b"", b"none")


def fingerprint(public: str) -> str:
    """SHA256:… as ssh-keygen -l and the forges show it."""
    blob = base64.b64decode(public.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _both(key, comment: str) -> tuple[str, str]:
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, f"{public.decode()} {comment}"
