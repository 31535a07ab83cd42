from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from boxes.models import Box, RegisteredImage
from workspaces.transcript import Transcript

PROMPT = "{prompt}"


def validate_argv_template(value):
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(a, str) for a in value)
        or PROMPT not in value
    ):
        raise ValidationError(f'A list of strings, one of them exactly "{PROMPT}".')


def validate_names(value):
    if not isinstance(value, list) or not all(
        isinstance(name, str) and name.isidentifier() for name in value
    ):
        raise ValidationError("A list of environment variable names.")


def validate_home_path(value):
    if value.startswith(("/", "~")) or ".." in value.split("/"):
        raise ValidationError("A path relative to the home, without '..'.")


class Agent(models.Model):
    """A coding-agent CLI in the job image (or an image of its own)."""

    # Turns use it unless the workspace or the run names another.
    DEFAULT = "codex"

    name = models.SlugField(unique=True)
    argv = models.JSONField(
        validators=[validate_argv_template],
        help_text=f'The command, with "{PROMPT}" where the prompt goes.',
    )
    image = models.CharField(
        max_length=255, blank=True, help_text="Its own image; empty means the workspace's."
    )
    timeout_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Its turns' time limit; empty means SPOON_RUN_TIMEOUT."
    )
    silence_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="A turn that prints nothing this long is ended; empty means "
        "SPOON_AGENT_SILENCE_SECONDS.",
    )
    secrets = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_names],
        help_text="Environment variables its CLI reads for credentials: a turn needs a "
        "secret named one of them, or the login file. Empty: it needs none.",
    )
    login_file = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_home_path],
        help_text="A file in the home that logging in to the CLI leaves, relative to the "
        "home (such as .codex/auth.json): it counts as credentials too.",
    )

    def __str__(self):
        return self.name

    def credentials_wanted(self) -> str:
        """The sentence a turn without credentials fails with."""
        names = self.secrets
        named = names[0] if len(names) == 1 else f"one of {', '.join(names[:-1])} or {names[-1]}"
        login = f", or a login in your box (~/{self.login_file})" if self.login_file else ""
        return (
            f"{self.name} needs credentials: a secret named {named} (add it on the Secrets "
            f"page, /settings/secrets/){login}."
        )

    def command(self, prompt: str) -> list[str]:
        return [prompt if part == PROMPT else part for part in self.argv]

    @classmethod
    def default(cls) -> "Agent | None":
        return cls.objects.filter(name=cls.DEFAULT).first()


class Workspace(models.Model):
    """A thread's folder in its user's box: ~/Code/<spoon>/<branch>."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspaces"
    )
    spoon = models.CharField(max_length=64)
    branch = models.CharField(max_length=200)
    repo_url = models.CharField(max_length=500, blank=True)
    image = models.ForeignKey(
        RegisteredImage,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="workspaces",
        help_text="This workspace's image; empty means the user's.",
    )
    agent = models.ForeignKey(
        Agent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="workspaces",
        help_text=f"The agent its turns use unless a run names another; empty means "
        f"{Agent.DEFAULT}.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "spoon", "branch"], name="one_workspace_per_folder"
            )
        ]

    def __str__(self):
        return f"{self.spoon}/{self.branch}"

    @property
    def relative_path(self) -> str:
        """Its folder, relative to the home: how pages and logs name it."""
        return f"Code/{self.spoon}/{self.branch}"

    def folder(self, box: Box) -> str:
        """Its folder in the box: the one place that path is made."""
        return f"{box.home}/{self.relative_path}"

    @property
    def image_ref(self) -> str:
        """The image it prefers for its box; empty means the user's."""
        return self.image.ref if self.image else ""

    def turn_agent(self) -> Agent | None:
        """The agent its turns use: its own, else the default one."""
        return self.agent or Agent.default()


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
    # The whole output once the run ended; while it runs, its RunChunks.
    recorded_output = models.TextField(blank=True)
    output_truncated = models.BooleanField(default=False)
    # Names its job in the box (spoon-job), so a cancel can end it and a
    # restarted Spoon can follow it again.
    token = models.CharField(max_length=32, unique=True)
    # The Spoon process that follows it and records it (see carriers).
    carrier = models.CharField(max_length=32, blank=True)
    carried_until = models.DateTimeField(null=True, blank=True, db_index=True)
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

    @property
    def output(self) -> str:
        """Everything it printed (up to SPOON_EXEC_OUTPUT_LIMIT), so far."""
        if self.finished or self.pk is None:
            return self.recorded_output
        pieces = list(self.chunks.order_by("seq").values_list("text", flat=True))
        if pieces:
            return "".join(pieces)
        # It ended since this row was read: its chunks became the record.
        return Run.objects.filter(pk=self.pk).values_list("recorded_output", flat=True).first()

    def transcript_so_far(self) -> list[dict]:
        """An agent turn's transcript: the record once it ended, read from the
        output so far while it runs (it is written once, at the end)."""
        if self.finished or not self.agent_id:
            return self.transcript
        reading = Transcript()
        reading.feed(self.output)
        return [entry.as_dict() for entry in reading.entries]


class RunChunk(models.Model):
    """A piece of a running run's output, appended as it comes (never
    rewritten); when the run ends they become its recorded_output."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="one_chunk_per_seq")]
        ordering = ["run", "seq"]

    def __str__(self):
        return f"run {self.run_id}, piece {self.seq}"


class IssuedTicket(models.Model):
    """When a user was given a ticket; counted to limit how many a minute (see access)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    issued_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"ticket for user {self.user_id} at {self.issued_at:%F %T}"


class SpentTicket(models.Model):
    """A ticket that has opened a socket once; it never opens another (see access)."""

    nonce = models.CharField(max_length=32, unique=True)
    spent_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"ticket {self.nonce[:8]}… spent {self.spent_at:%F %T}"
