from django.conf import settings
from django.db import models

from dotfiles import encryption


class OverlayFile(models.Model):
    """A file the user keeps in Spoon, written into their home on every apply.
    The content is encrypted, bound to its owner and path."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="overlay_files"
    )
    path = models.CharField(max_length=255, help_text="relative to the home")
    encrypted_content = models.BinaryField()
    executable = models.BooleanField(default=False)
    size = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "path"], name="one_file_per_path")]
        ordering = ["path"]

    def __str__(self):
        return f"~/{self.path}"

    def _associated(self) -> bytes:
        return encryption.associated_data("file", self.user_id, self.path)

    @property
    def content(self) -> bytes:
        return encryption.decrypt(self.encrypted_content, self._associated())

    @content.setter
    def content(self, value: bytes) -> None:
        self.encrypted_content = encryption.encrypt(value, self._associated())
        self.size = len(value)


class DotfilesConfig(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dotfiles_config"
    )
    enabled = models.BooleanField(default=True)
    repo_url = models.CharField(max_length=500, blank=True)
    ref = models.CharField(max_length=200, blank=True)
    setup_path = models.CharField(max_length=255, blank=True)
    # The setup script's arguments, each one word as given (never a shell line).
    setup_args = models.JSONField(default=list, blank=True)

    class Access(models.TextChoices):
        PUBLIC = "", "public"
        TOKEN = "token", "a token over https"
        DEPLOY_KEY = "deploy_key", "a deploy key over ssh"

    # How a private repository is reached. The token and the key are kept
    # encrypted like secrets and handed to the clone on its input only.
    access = models.CharField(max_length=16, choices=Access.choices, blank=True, default="")
    token_username = models.CharField(max_length=100, blank=True)
    encrypted_token = models.BinaryField(blank=True, default=b"")
    encrypted_deploy_key = models.BinaryField(blank=True, default=b"")
    deploy_key_public = models.TextField(blank=True, help_text="its public half, for the forge")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"dotfiles of {self.user}"

    def _associated(self, what: str) -> bytes:
        return encryption.associated_data(what, self.user_id, "dotfiles-repository")

    @property
    def token(self) -> str:
        if not self.encrypted_token:
            return ""
        return encryption.decrypt(bytes(self.encrypted_token), self._associated("token")).decode()

    @token.setter
    def token(self, value: str) -> None:
        self.encrypted_token = (
            encryption.encrypt(value.encode(), self._associated("token")) if value else b""
        )

    @property
    def deploy_key(self) -> str:
        """The private key, OpenSSH format."""
        if not self.encrypted_deploy_key:
            return ""
        stored = bytes(self.encrypted_deploy_key)
        return encryption.decrypt(stored, self._associated("deploy-key")).decode()

    @deploy_key.setter
    def deploy_key(self, value: str) -> None:
        self.encrypted_deploy_key = (
            encryption.encrypt(value.encode(), self._associated("deploy-key")) if value else b""
        )

    def credential(self) -> str:
        """What the clone needs for the chosen access, or ""."""
        if self.access == self.Access.TOKEN:
            return self.token
        if self.access == self.Access.DEPLOY_KEY:
            return self.deploy_key
        return ""


class DotfilesRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        # It ran, but something looks wrong: the setup changed nothing.
        WARNING = "warning"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        BOX_START = "box start"
        APPLY_NOW = "apply now"
        FILES_SAVED = "files saved"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dotfiles_runs"
    )
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    exit_code = models.IntegerField(null=True, blank=True)
    steps = models.JSONField(default=list)
    log = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The Spoon process that carries the apply out (see boxes.carriers).
    carrier = models.CharField(max_length=32, blank=True)
    carried_until = models.DateTimeField(null=True, blank=True, db_index=True)
    # The repository step's job in the box (spoon-job), and where its output
    # begins in the log: a process that carries on with the apply follows it.
    job = models.CharField(max_length=32, blank=True)
    job_log_at = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self):
        return f"{self.trigger} run of {self.user}: {self.status}"


class Secret(models.Model):
    """A name/value pair given to every command in the user's box as an
    environment variable; never written into the home."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="secrets"
    )
    name = models.CharField(max_length=128)
    encrypted_value = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="one_secret_per_name")]
        ordering = ["name"]

    def __str__(self):
        return self.name

    def _associated(self) -> bytes:
        return encryption.associated_data("secret", self.user_id, self.name)

    @property
    def value(self) -> str:
        return encryption.decrypt(self.encrypted_value, self._associated()).decode()

    @value.setter
    def value(self, value: str) -> None:
        self.encrypted_value = encryption.encrypt(value.encode(), self._associated())

    @classmethod
    def values_of(cls, user_id: int) -> dict[str, str]:
        """A user's secrets by name; one that cannot be read is left out,
        never passed on garbled."""
        values = {}
        for secret in cls.objects.filter(user_id=user_id):
            try:
                values[secret.name] = secret.value
            except encryption.DecryptionError:
                continue
        return values
