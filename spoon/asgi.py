"""The entry point of a serving (daphne) process: the application, and what
such a process does beside answering requests."""

from spoon.routing import application  # noqa: F401  (sets Django up first)

from boxes import carriers  # noqa: E402  isort: skip
from boxes.health import log_startup_problems  # noqa: E402  isort: skip
from dotfiles import materialize  # noqa: E402  isort: skip
from workspaces import runs  # noqa: E402  isort: skip

log_startup_problems()
# Runs and applies a stopped process carried go on in their boxes: carry on with them.
carriers.keep_adopting(runs.adopt_orphans, materialize.adopt_orphans)
