"""How each port of a box is shared, and the sign-in tickets spent."""

import secrets

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.crypto import constant_time_compare, salted_hmac

from boxes.models import Box


class PortShare(models.Model):
    """A port's sharing; a port without one is private to the box's owner."""

    class Sharing(models.TextChoices):
        PRIVATE = "private", "only you"
        USERS = "users", "anyone signed in to Spoon"
        PUBLIC = "public", "anyone with the link"

    box = models.ForeignKey(Box, on_delete=models.CASCADE, related_name="port_shares")
    port = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65535)])
    sharing = models.CharField(max_length=8, choices=Sharing.choices, default=Sharing.PRIVATE)
    # The public link's secret is derived from this and the SECRET_KEY, so
    # the database alone does not give the link away; a new one revokes it.
    link_nonce = models.CharField(max_length=32, default="", blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["box", "port"], name="one_share_per_port")]
        ordering = ["box", "port"]

    def __str__(self):
        return f"{self.box.username}:{self.port} ({self.get_sharing_display()})"

    def new_link(self) -> None:
        self.link_nonce = secrets.token_hex(16)

    @property
    def link_token(self) -> str:
        if not self.link_nonce:
            return ""
        key = f"{self.box_id}:{self.port}:{self.link_nonce}"
        return salted_hmac("spoon.previews.link", key, algorithm="sha256").hexdigest()

    def link_matches(self, token: str) -> bool:
        return bool(self.link_token) and constant_time_compare(token, self.link_token)


class SpentTicket(models.Model):
    """A preview sign-in ticket that has set its cookie once; never again."""

    nonce = models.CharField(max_length=32, unique=True)
    spent_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"preview ticket {self.nonce[:8]}…"
