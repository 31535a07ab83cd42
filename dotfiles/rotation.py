"""Re-encrypting stored files and secrets under the first key."""

from dotfiles import encryption
from dotfiles.models import OverlayFile, Secret


def rotate_keys() -> dict[str, int]:
    """Re-encrypt every value not yet under SPOON_ENCRYPTION_KEYS[0]; returns counts.
    Values that no key decrypts are left as they are and counted as failed."""
    counts = {"files": 0, "secrets": 0, "current": 0, "failed": 0}
    for model, field, attribute, label in (
        (OverlayFile, "encrypted_content", "content", "files"),
        (Secret, "encrypted_value", "value", "secrets"),
    ):
        for row in model.objects.iterator():
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
