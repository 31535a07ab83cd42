"""Fixtures shared by every suite: a real Docker Engine with the images built,
throwaway containers that are always removed, a real daphne, a real chromium."""

import contextlib
import threading
import uuid

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from boxes import commands, docker_engine, images
from tests import waits, workers
from tests.passes import (  # noqa: F401 - how scripts/test's passes choose and order tests
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_sessionfinish,
    pytest_testnodedown,
)
from tests.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SpoonServer,
    one_builder,
    remove_test_leftovers,
    start_job_container,
)
from tests.waits import join_threads


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
        waits.until(
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
