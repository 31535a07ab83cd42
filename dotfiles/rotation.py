"""Re-encrypting stored files, secrets and repository credentials under the first key."""

from dotfiles import encryption
from dotfiles.models import DotfilesConfig, OverlayFile, Secret

# (model, encrypted field, the attribute that decrypts it, what it is counted as)
ENCRYPTED = (
    (OverlayFile, "encrypted_content", "content", "files"),
    (Secret, "encrypted_value", "value", "secrets"),
    (DotfilesConfig, "encrypted_token", "token", "credentials"),
    (DotfilesConfig, "encrypted_deploy_key", "deploy_key", "credentials"),
)


def rotate_keys() -> dict[str, int]:
    """Re-encrypt every value not yet under SPOON_ENCRYPTION_KEYS[0]; returns counts.
    Values that no key decrypts are left as they are and counted as failed."""
    counts = {"files": 0, "secrets": 0, "credentials": 0, "current": 0, "failed": 0}
    for model, field, attribute, label in ENCRYPTED:
        for row in model.objects.exclude(**{field: b""}).iterator():
            if encryption.is_current(getattr(row, field)):
                counts["current"] += 1
                continue
            try:
                plain = getattr(row, attribute)
            except encryption.DecryptionError:
                counts["failed"] += 1
                continue
            old = getattr(row, field)
            setattr(row, attribute, plain)
            # Only if nobody saved a new value meanwhile: theirs wins.
            changed = model.objects.filter(pk=row.pk, **{field: old}).update(
                **{field: getattr(row, field)}
            )
            counts[label] += changed
    return counts
