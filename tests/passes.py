"""How a run of the suite is shaped: which tests a pass of scripts/test
runs, the order xdist hands them out in, what the workers report back, and
what a passing run writes. conftest.py imports these hooks."""

import contextlib
import os
from pathlib import Path

import pytest
from django.conf import settings

from boxes import docker_engine
from tests import reliability, workers
from tests.support import remove_test_leftovers


def pytest_addoption(parser):
    parser.addoption(
        "--both-databases-only",
        action="store_true",
        help="run only the tests marked both_databases (scripts/test's second pass)",
    )
    parser.addoption(
        "--engine-restarts-only",
        action="store_true",
        help="run only the tests marked engine_restart (scripts/test's last pass)",
    )


def pytest_configure(config):
    workers.isolate()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Which tests run, and in what order (xdist hands them out in it).
    Tests that restart the machine's Docker Engine go last: every container
    of the run's other tests dies with it. Beside other workers they cannot
    run at all: scripts/test runs them on their own."""
    left_out = []
    if config.getoption("both_databases_only"):
        left_out += [item for item in items if not item.get_closest_marker("both_databases")]
    if config.getoption("engine_restarts_only"):
        left_out += [item for item in items if not item.get_closest_marker("engine_restart")]
    elif parallel(config):
        left_out += [item for item in items if item.get_closest_marker("engine_restart")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in left_out]
    items.sort(key=scheduled)


def scheduled(item) -> tuple:
    """An item's place: tests that use no database first (they need no
    state and leave none), then pytest-django's order (tests that keep the
    database's rows before those that empty it); within each, the modules
    that run on one worker (xdist_group) and slow tests first, so that no
    worker starts one while the others are finishing; engine restarts last."""
    marker = item.get_closest_marker("django_db")
    empties = "transactional_db" in item.fixturenames or bool(
        marker and (marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences"))
    )
    uses = 2 if empties else int(bool(marker) or "db" in item.fixturenames)
    heavy = bool(item.get_closest_marker("xdist_group") or item.get_closest_marker("slow"))
    return (bool(item.get_closest_marker("engine_restart")), uses, not heavy)


def parallel(config) -> bool:
    """Whether this run has several xdist workers (seen from any process)."""
    workers_asked = getattr(config.option, "numprocesses", None)
    return bool(workers_asked) or int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failure's report, even when pytest cannot show its source: Python
    3.11.7's ast module sometimes fails while pytest reads a failing test's
    source ("AST constructor recursion depth mismatch", a CPython bug), and
    under xdist that took the whole worker down with the failure unsaid."""
    try:
        return (yield)
    except SystemError as exc:
        if "AST constructor recursion depth mismatch" not in str(exc):
            raise
        style, item.config.option.tbstyle = item.config.option.tbstyle, "native"
        try:
            return pytest.TestReport.from_item_and_call(item, call)
        finally:
            item.config.option.tbstyle = style


@pytest.hookimpl(optionalhook=True)  # xdist's, absent with -p no:xdist
def pytest_testnodedown(node, error):
    """A worker's record of what it broke on purpose, added to this one's."""
    # (A worker that crashed sent none.)
    reliability.merge(getattr(node, "workeroutput", {}).get("reliability", {}))


def pytest_sessionfinish(session, exitstatus):
    """Workers hand their record over. A passing run of the whole suite (no
    files or -k named) writes docs/reliability.md from what the tests
    recorded, or keeps the record for scripts/test to write it from all
    its passes (SPOON_RELIABILITY_RECORD)."""
    config = session.config
    if hasattr(config, "workerinput"):
        config.workeroutput["reliability"] = reliability.record()
        return
    if parallel(config):
        # Every worker is done: what a killed run left in any slot goes too.
        with contextlib.suppress(docker_engine.EngineError):
            remove_test_leftovers(workers.instances(settings.SPOON_INSTANCE))
    whole = not config.args or config.args == ["tests"]
    keyword = config.getoption("keyword") or config.getoption("markexpr")
    if exitstatus != 0 or not whole or keyword or not reliability.anything():
        return
    kept = os.environ.get("SPOON_RELIABILITY_RECORD")
    if kept:
        reliability.keep(Path(kept))
    elif reliability.write():
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"{reliability.PAGE} changed: commit it with this change")
