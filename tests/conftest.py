"""Fixtures shared by every suite: a real Docker Engine with the images built,
throwaway containers that are always removed, a real daphne, a real chromium."""

import contextlib
import os
import threading
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from boxes import commands, docker_engine, images
from tests import reliability, support, workers
from tests.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TEST_LABEL,
    SpoonServer,
    join_threads,
    one_builder,
    start_job_container,
)


@pytest.fixture(scope="session")
def engine():
    """A reachable engine holding current images, or the whole run fails."""
    try:
        version = docker_engine.version()
    except docker_engine.EngineError as exc:
        pytest.fail(f"The tests need a Docker Engine: {exc}", pytrace=False)
    remove_test_leftovers()  # what a killed run left behind
    build_log: list[str] = []
    try:
        with one_builder():
            images.ensure_images(log=build_log.append)
    except (images.ImageBuildError, docker_engine.EngineError) as exc:
        tail = "\n".join(build_log[-30:])
        pytest.fail(f"Building the images failed: {exc}\n{tail}", pytrace=False)
    yield version
    remove_test_leftovers()


def remove_test_leftovers(instances=None):
    """Containers and volumes of this process's installation ids (or of each
    id named): the tests' own, and boxes Spoon made for them."""
    for instance in instances or [settings.SPOON_INSTANCE, workers.servers_instance()]:
        docker_engine.remove_labeled(f"{TEST_LABEL}={instance}")
        # Boxes made through Spoon carry this run's installation id (the test
        # data directory keeps its own), never a developer's.
        docker_engine.remove_labeled(f"spoon.instance={instance}")


@pytest.fixture(autouse=True)
def boxes_offline(settings):
    """Test boxes never get a network; and dotfiles apply on a box start only
    in the tests that ask for it (it runs in a thread of its own)."""
    settings.SPOON_BOX_NETWORK = "none"
    settings.SPOON_DOTFILES_APPLY_ON_START = False


@pytest.fixture
def make_user(django_user_model):
    """Users whose boxes (container and home) are removed after the test."""
    made = []

    def make(username=None, **fields):
        username = username or f"u{uuid.uuid4().hex[:8]}"
        user = django_user_model.objects.create_user(username, password="pw-for-tests", **fields)
        made.append(user)
        return user

    yield make
    from boxes.models import Box

    for box in Box.objects.filter(user__in=[u for u in made if u.pk]):
        # By label, never by name alone: a developer's own Spoon on this
        # engine may have a box of the same name.
        docker_engine.remove_labeled(
            [f"spoon.instance={settings.SPOON_INSTANCE}", f"spoon.user={box.username}"]
        )


@pytest.fixture
def start_box(engine):
    """start_box(user="alice", uid=1000, home_volume=None, **environment):
    a job-image container hardened like a box, ready; removed after the test."""
    names = []

    def start(*args, **kwargs):
        names.append(start_job_container(*args, **kwargs))
        return names[-1]

    yield start
    for name in names:
        docker_engine.remove_container(name)


@pytest.fixture(scope="module")
def module_box(engine):
    """One such container for a module's tests that only read from it."""
    name = start_job_container()
    yield name
    docker_engine.remove_container(name)


@pytest.fixture(scope="session")
def spoon_server(engine, tmp_path_factory):
    """daphne for the browser tests, with a staff user (spoon_server.staff,
    password correct-horse-battery) and another (spoon_server.member,
    another-long-password), named for this test process: their boxes share
    the engine with other workers'."""
    # file:// too: boxes have no network, so tests make dotfiles repositories in them.
    # Some tests open many sockets in a minute as one user (test_socket_faults).
    server = SpoonServer(
        tmp_path_factory.mktemp("spoon-server"),
        SPOON_DOTFILES_URL_SCHEMES="https,ssh,http,file",
        SPOON_TICKETS_PER_MINUTE="1000",
    )
    server.staff, server.member = f"ada{workers.suffix()}", f"bob{workers.suffix()}"
    server.create_user(server.staff, "correct-horse-battery", staff=True)
    server.create_user(server.member, "another-long-password")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def browser(request):
    """A chromium for the test. Playwright's sync API keeps an event loop
    running in this thread while it lives, and Django's ORM (and every async
    test) refuses to run next to one: so each test gets one of its own and
    it is gone before the next test touches the database; only a module
    that says SHARES_A_BROWSER = True (its tests drive a daphne and never
    use the database in this process) keeps one for all its tests."""
    if getattr(request.module, "SHARES_A_BROWSER", False):
        yield request.getfixturevalue("module_browser")
        return
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def module_browser():
    with launched_chromium() as chromium:
        yield chromium


@contextlib.contextmanager
def launched_chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A page in a fresh context; anything Spoon's Content-Security-Policy
    refused while the test ran fails it (the pages must work under it). The
    policy allows no eval: give wait_for_function a function, not an
    expression (Playwright evals those in the page)."""
    context = browser.new_context()
    page = context.new_page()
    refused = []
    page.on("console", lambda m: "Content Security Policy" in m.text and refused.append(m.text))
    yield page
    context.close()
    assert not refused, f"refused by the Content-Security-Policy: {refused}"


@pytest.fixture
def new_user_logged_in():
    """new_user_logged_in(page, server, landing): make a fresh user on the
    server and log in as them in the page, landing on a path; their name."""

    def log_in(page, server, landing: str) -> str:
        username = f"u{uuid.uuid4().hex[:8]}"
        server.create_user(username, "a-long-test-password")
        page.goto(f"{server.url}/login/?next={landing}")
        page.fill("#id_username", username)
        page.fill("#id_password", "a-long-test-password")
        page.click("button[type=submit]")
        page.wait_for_url(f"{server.url}{landing}")
        return username

    return log_in


@pytest.fixture
def session_cookie():
    """session_cookie(user): the Cookie header of a fresh session of theirs."""

    def cookie_for(user) -> str:
        client = Client()
        client.force_login(user)
        return f"sessionid={client.cookies['sessionid'].value}"

    return cookie_for


@pytest.fixture
def sh():
    """sh(box, script): run a shell script in the box as its user; its
    stripped output, or the test fails."""

    def run(box, script: str) -> str:
        result = commands.run(box, ["sh", "-c", script])
        assert result.ok, (result.error, result.output)
        return result.output.decode().strip()

    return run


@pytest.fixture
def workspace(engine, make_user):
    """proj/main of a fresh user, made in their box."""
    from workspaces import folders

    return folders.create_workspace(make_user(), "proj", "main")


@pytest.fixture
def wait_for_run():
    """wait_for_run(run, until=None, timeout=60): poll a workspace run until
    its status is one of `until` (default: finished); the run."""

    def wait(run, until=None, timeout=60):
        wanted = until or run.FINISHED
        support.until(
            lambda: run.refresh_from_db() or run.status in wanted,
            lambda _: f"run {run.pk} still {run.status}: {run.output[-300:]}",
            timeout,
        )
        if run.status in run.FINISHED:
            join_threads(f"run-{run.pk}")  # it still lets go of the box
        return run

    return wait


@pytest.fixture
def run_in_threads():
    """run_in_threads(*calls): call each function in a thread of its own,
    all at once; what they returned and what they raised. Each thread
    closes its own database connection."""

    def run(*calls):
        results, errors = [], []

        def call(fn):
            try:
                results.append(fn())
            except Exception as exc:  # noqa: BLE001 - returned to the test to assert on
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=call, args=(fn,)) for fn in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results, errors

    return run


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """Debian's redis-server on a loopback port of its own, for this run."""
    import subprocess

    from tests.support import free_port, wait_for_port

    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)


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
    if item.get_closest_marker("django_db"):
        marker = item.get_closest_marker("django_db")
        empties = marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences")
        uses = 2 if empties or "transactional_db" in item.fixturenames else 1
    else:
        uses = 2 if "transactional_db" in item.fixturenames else int("db" in item.fixturenames)
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
    reliability.merge(node.workeroutput.get("reliability", {}))


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
