"""Does an agent's CLI have credentials in the box? Without them it would
only retry its provider for many minutes; with none, its turn fails before
the CLI starts, with a sentence naming what it reads."""

from django.core.exceptions import ValidationError

from boxes import commands, processes
from workspaces.models import Agent


class NoCredentials(ValidationError):
    """The agent's CLI would find no credentials: its turn would only hang."""

    field = "agent"


def refuse_if_surely_missing(agent: Agent, box) -> None:
    """Before a turn is queued: no secret it reads, and no login file that
    could be in the box instead, is a refusal now."""
    if not agent.login_file and not has_secret(agent, box):
        raise NoCredentials(agent.credentials_wanted())


def has_secret(agent: Agent, box) -> bool:
    """Will its CLI find one of the secrets it reads in its environment?"""
    if not agent.secrets:
        return True
    environment = processes.environment(box)
    return any(environment.get(name) for name in agent.secrets)


def found(agent: Agent, box) -> bool:
    """A secret it reads, or the file a login in the box left."""
    if has_secret(agent, box):
        return True
    if not agent.login_file:
        return False
    return commands.run(box, ["test", "-s", f"{box.home}/{agent.login_file}"]).ok
