from django.core.exceptions import ValidationError
from django.db import models

from boxes.models import Workspace

PROMPT = "{prompt}"


def validate_argv_template(value):
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(a, str) for a in value)
        or PROMPT not in value
    ):
        raise ValidationError(f'A list of strings, one of them exactly "{PROMPT}".')


class Agent(models.Model):
    """A coding-agent CLI in the job image (or an image of its own)."""

    name = models.SlugField(unique=True)
    argv = models.JSONField(
        validators=[validate_argv_template],
        help_text=f'The command, with "{PROMPT}" where the prompt goes.',
    )
    image = models.CharField(
        max_length=255, blank=True, help_text="Its own image; empty means the workspace's."
    )

    def __str__(self):
        return self.name

    def command(self, prompt: str) -> list[str]:
        return [prompt if part == PROMPT else part for part in self.argv]


class WorkspaceAgent(models.Model):
    """The agent a workspace's turns use unless a run names another."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="agent_choice"
    )
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT)

    def __str__(self):
        return f"{self.agent} for {self.workspace}"

    @classmethod
    def choose(cls, workspace: Workspace, agent: Agent | None) -> None:
        """The agent for the workspace's turns; None goes back to the default."""
        if agent is None:
            cls.objects.filter(workspace=workspace).delete()
        else:
            cls.objects.update_or_create(workspace=workspace, defaults={"agent": agent})


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
    agent = models.ForeignKey(Agent, on_delete=models.SET_NULL, null=True, blank=True)
    prompt = models.TextField(blank=True)
    image = models.CharField(max_length=255, blank=True, help_text="This run's own image")
    transcript = models.JSONField(default=list, blank=True)
    # An explore run only reads: it shares the checkout even while another
    # run writes there. A write run that finds the checkout busy gets a git
    # worktree of its own (relative to the checkout), removed when it ends.
    explore = models.BooleanField(default=False)
    worktree = models.CharField(max_length=100, blank=True)
    worktree_removed = models.BooleanField(default=False)
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
