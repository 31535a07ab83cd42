"""When a run is ended inside its box, and the sentence that says so."""

from dataclasses import dataclass

from django.conf import settings

from workspaces.models import Run


@dataclass(frozen=True)
class Limits:
    """When a run is ended inside its box: after `timeout` seconds in all,
    and (agent turns) after `silence` seconds without output."""

    timeout: int
    timeout_source: str
    silence: int | None
    silence_source: str

    @classmethod
    def of(cls, run: Run) -> "Limits":
        agent = run.agent if run.agent_id else None
        own_timeout = agent.timeout_seconds if agent else None
        own_silence = agent.silence_seconds if agent else None
        by_agent = f"set on the agent {agent}" if agent else ""
        return cls(
            timeout=own_timeout or settings.SPOON_RUN_TIMEOUT,
            timeout_source=by_agent if own_timeout else "SPOON_RUN_TIMEOUT",
            silence=(own_silence or settings.SPOON_AGENT_SILENCE_SECONDS) if agent else None,
            silence_source=by_agent if own_silence else "SPOON_AGENT_SILENCE_SECONDS",
        )

    def sentence(self, stopped_by: str) -> str:
        if stopped_by == "silence":
            return (
                f"Ended inside the box: it printed nothing for {span(self.silence)}, "
                f"its silence limit ({self.silence_source})."
            )
        return (
            f"Ended inside the box after {span(self.timeout)}, its time limit "
            f"({self.timeout_source})."
        )


def span(seconds: int) -> str:
    """3600 -> "1 hour", 600 -> "10 minutes", 90 -> "90 seconds"."""
    for size, unit in ((3600, "hour"), (60, "minute"), (1, "second")):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"
