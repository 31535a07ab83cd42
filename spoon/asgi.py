"""The entry point of a serving (daphne) process: the application, and what
such a process does beside answering requests."""

from spoon.routing import application  # noqa: F401  (sets Django up first)

from boxes.health import log_startup_problems  # noqa: E402  isort: skip
from workspaces.runs import keep_adopting  # noqa: E402  isort: skip

log_startup_problems()
# Runs a stopped process carried go on in their boxes: carry on with them.
keep_adopting()
