from django.db import models

from boxes.models import Workspace


class Run(models.Model):
    """A project command run in a workspace, in its owner's box."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="runs")
    argv = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    exit_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    output = models.TextField(blank=True)
    output_truncated = models.BooleanField(default=False)
    # Names the exec in the box (spoon-exec), so a cancel can end it.
    token = models.CharField(max_length=32, unique=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"run {self.pk} in {self.workspace}: {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED
