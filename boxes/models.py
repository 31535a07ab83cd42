from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.timesince import timesince

from boxes.naming import validate_image_name, validate_image_ref, validate_linux_name


class Box(models.Model):
    """A user's one box. The row records what Spoon last did to the engine;
    the engine stays the truth about whether the container runs."""

    class State(models.TextChoices):
        RUNNING = "running"
        STOPPED = "stopped"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="box"
    )
    # The Linux user name inside the box; it names the container and the home
    # volume too, so once assigned it never changes.
    username = models.CharField(max_length=32, unique=True, validators=[validate_linux_name])
    state = models.CharField(max_length=16, choices=State.choices, default=State.STOPPED)
    image = models.CharField(
        max_length=255, blank=True, help_text="This user's image; empty means SPOON_JOB_IMAGE."
    )
    running_image = models.CharField(max_length=255, blank=True)
    running_image_id = models.CharField(max_length=80, blank=True)
    container_id = models.CharField(max_length=80, blank=True)
    update_pending = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_error = models.TextField(blank=True)
    # Why the box last stopped ("stopped after 30 idle minutes", "stopped by
    # an operator", ...): written before the container stops, so whatever it
    # cuts off can say why; cleared when the box starts again.
    stop_reason = models.CharField(max_length=200, blank=True)
    # Set while one process changes the container (see lifecycle.claimed).
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    # What its home took on disk when last measured (boxes.quota).
    home_bytes = models.BigIntegerField(null=True, blank=True)
    home_measured_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "boxes"
        permissions = [("open_user_terminal", "Can open another user's terminal")]

    def __str__(self):
        return self.container_name

    def save(self, *args, **kwargs):
        if self.pk is not None:
            stored = Box.objects.filter(pk=self.pk).values_list("username", flat=True).first()
            if stored is not None and stored != self.username:
                raise ValueError(f"A box's user name never changes (it is {stored}).")
        super().save(*args, **kwargs)

    @property
    def container_name(self) -> str:
        return f"spoon-box-{self.username}"

    @property
    def volume_name(self) -> str:
        return f"spoon-home-{self.username}"

    @property
    def home(self) -> str:
        return f"/home/{self.username}"

    def is_claimed(self, now=None) -> bool:
        return self.claimed_until is not None and self.claimed_until >= (now or timezone.now())

    def is_idle(self, now=None, idle_seconds=None) -> bool:
        """No lease that holds it and no activity for idle_seconds."""
        now = now or timezone.now()
        if idle_seconds is None:
            idle_seconds = settings.SPOON_BOX_IDLE_SECONDS
        idle = timedelta(seconds=idle_seconds)
        return self.last_activity_at <= now - idle and not self.leases.holding(now).exists()


class LeaseQuerySet(models.QuerySet):
    def live(self, now=None):
        return self.filter(expires_at__gt=now or timezone.now())

    def holding(self, now=None):
        """Live leases that keep the box from an idle stop: work going on."""
        return self.live(now).exclude(kind__in=Lease.BY_TRAFFIC)


class Lease(models.Model):
    """Something uses the box. Its holder renews it by heartbeat; a holder that
    dies stops renewing and the lease expires by itself. A live lease keeps
    the box from being recreated under its holder; one of a kind that works
    (a run, an apply, making a workspace) also keeps it from an idle stop."""

    class Kind(models.TextChoices):
        TERMINAL = "terminal"
        WORKSPACE = "workspace"
        RUN = "run"
        DOTFILES = "dotfiles"
        STAFF = "staff", "staff terminal"
        PREVIEW = "preview"
        SSH = "ssh", "SSH"

    # Kinds held while connected, which keep a box up only by their traffic
    # (activity): an open, silent terminal tab, preview or SSH session lets
    # its box go idle.
    BY_TRAFFIC = (Kind.TERMINAL, Kind.STAFF, Kind.PREVIEW, Kind.SSH)

    box = models.ForeignKey(Box, on_delete=models.CASCADE, related_name="leases")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    holder = models.CharField(max_length=200, help_text="who holds it, for operators")
    acquired_at = models.DateTimeField(auto_now_add=True)
    renewed_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    # Exclusive holders of one kind take turns in the box, oldest lease
    # first (a dotfiles apply waits for the one before, in any process).
    exclusive = models.BooleanField(default=False)

    objects = LeaseQuerySet.as_manager()

    def __str__(self):
        return f"{self.kind} lease on {self.box} ({self.holder})"

    @property
    def is_live(self) -> bool:
        return self.expires_at > timezone.now()


class RegisteredImage(models.Model):
    """An image operators offer: users pick registered images for their
    workspaces, and `manage.py buildimage` builds new ones from them."""

    name = models.CharField(
        max_length=64, unique=True, validators=[validate_image_name], help_text="What users pick."
    )
    ref = models.CharField(
        max_length=255,
        unique=True,
        validators=[validate_image_ref],
        help_text="The engine's reference: repository:tag, or name@sha256:digest.",
    )
    description = models.CharField(max_length=200, blank=True)
    offered = models.BooleanField(
        default=True, help_text="Users can pick it; workspaces that have it keep it either way."
    )
    # Set when Spoon built it (images/stacks or `manage.py buildimage`).
    built_from = models.CharField(max_length=255, blank=True)
    packages = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "image"

    def __str__(self):
        return self.name


class StaffAction(models.Model):
    """What staff did to a user's box, or to what runs in everyone's: opening
    a user's terminal (how long, typing or not), setting a box's image,
    changing an agent's command. Kept for operators (the admin lists it,
    read-only) and shown to the users it affects."""

    class What(models.TextChoices):
        TERMINAL = "terminal", "opened the terminal"
        BOX_IMAGE = "box image", "set the box's image"
        IMAGE = "image", "changed a registered image"
        WORKSPACE = "workspace", "changed a workspace"
        AGENT = "agent", "changed an agent"

    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    staff_name = models.CharField(max_length=150)
    # Whose box; empty when it affects everyone (an agent's command).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="staff_actions",
    )
    what = models.CharField(max_length=16, choices=What.choices)
    detail = models.TextField(blank=True)
    typing = models.BooleanField(default=False, help_text="A terminal that could type.")
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = "staff action"

    def __str__(self):
        whose = f"{self.owner}'s box" if self.owner_id else "everyone's boxes"
        return f"{self.staff_name} {self.get_what_display()} ({whose})"

    @property
    def how_long(self) -> str:
        """A terminal's time open: "3 minutes", "less than a minute", "still open"."""
        if self.ended_at is None:
            return "still open"
        seconds = (self.ended_at - self.started_at).total_seconds()
        return "less than a minute" if seconds < 60 else timesince(self.started_at, self.ended_at)
