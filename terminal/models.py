from django.db import models


class SpentTicket(models.Model):
    """A ticket that has opened a terminal once; it never opens another."""

    nonce = models.CharField(max_length=32, unique=True)
    spent_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"ticket {self.nonce[:8]}… spent {self.spent_at:%F %T}"
