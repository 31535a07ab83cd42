"""Where dotfiles and secrets plug into boxes."""

from django.conf import settings
from django.dispatch import receiver

from boxes import processes
from boxes.signals import box_started
from dotfiles.models import DotfilesRun, Secret


@receiver(box_started, dispatch_uid="dotfiles-apply-on-start")
def apply_on_start(sender, box, **kwargs):
    from dotfiles.materialize import apply_in_background

    if not settings.SPOON_DOTFILES_APPLY_ON_START:
        return
    # On the image it started on: an apply never moves a box to another one.
    trigger = DotfilesRun.Trigger.BOX_START
    apply_in_background(box.user, trigger, preferred_image=box.running_image)


def secrets_environment(box) -> dict[str, str]:
    """The user's secrets, as environment variables of every command, and
    their names (the terminal brings tmux's environment up to date with them)."""
    values = Secret.values_of(box.user_id)
    return {**values, "SPOON_SECRET_NAMES": " ".join(sorted(values))}


if secrets_environment not in processes.ENVIRONMENT_PROVIDERS:
    processes.ENVIRONMENT_PROVIDERS.append(secrets_environment)
