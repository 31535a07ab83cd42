"""AES-256-GCM for what users store (overlay files, secrets): the one module
that encrypts.

A stored value is MAGIC | key id (8 bytes) | nonce (12) | ciphertext+tag.
The key id names the key (the first 8 bytes of its SHA-256), so any key of
SPOON_ENCRYPTION_KEYS decrypts what it encrypted; the first key encrypts.
The associated data binds a value to its owner and place: copied to another
user or path, it fails to decrypt.
"""

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

MAGIC = b"SPN1"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A stored value cannot be decrypted; the message says why."""


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:8]


def associated_data(kind: str, user_id: int, name: str) -> bytes:
    return f"spoon/{kind}/{user_id}/{name}".encode()


def encrypt(plaintext: bytes, associated: bytes) -> bytes:
    key = settings.SPOON_ENCRYPTION_KEYS[0]
    nonce = os.urandom(NONCE_BYTES)
    return MAGIC + key_id(key) + nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def decrypt(stored: bytes, associated: bytes) -> bytes:
    stored = bytes(stored)
    if not stored.startswith(MAGIC) or len(stored) < len(MAGIC) + 8 + NONCE_BYTES + 16:
        raise DecryptionError("This value is not in Spoon's encrypted format.")
    wanted = stored[4:12]
    key = next((k for k in settings.SPOON_ENCRYPTION_KEYS if key_id(k) == wanted), None)
    if key is None:
        raise DecryptionError(
            f"This value was encrypted with key {wanted.hex()}, which is not in "
            "SPOON_ENCRYPTION_KEYS any more."
        )
    nonce, ciphertext = stored[12 : 12 + NONCE_BYTES], stored[12 + NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, associated)
    except InvalidTag as exc:
        raise DecryptionError(
            "This value does not decrypt: it was altered, or it belongs to another user or path."
        ) from exc


def is_current(stored: bytes) -> bool:
    """Encrypted under the first key already (nothing for rotation to do)?"""
    return bytes(stored)[4:12] == key_id(settings.SPOON_ENCRYPTION_KEYS[0])
