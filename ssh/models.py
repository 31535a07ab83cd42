from django.conf import settings
from django.db import models


class SshKey(models.Model):
    """A public key that opens its user's box over SSH (ssh/gateway.py)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ssh_keys"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=40, help_text="ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa")
    bits = models.PositiveIntegerField()
    public_key = models.TextField(help_text="the key's type and base64, as in authorized_keys")
    fingerprint = models.CharField(max_length=60, help_text="SHA256, as ssh-keygen -l shows it")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "fingerprint"], name="one_key_once_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.fingerprint})"
