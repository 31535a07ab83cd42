"""How tests wait: for the thing itself (a line, a state, a process),
never for a fixed time. until() asks again and again and fails past a
timeout that a passing test never reaches; a gate holds a script in a box
at a point the test chooses."""

import asyncio
import inspect
import queue
import threading
import time
import uuid

from boxes import docker_engine


def read_until(process, wanted, timeout=120) -> list[str]:
    """Lines of a process's text stdout up to and including the first for
    which wanted(line) is true; fails the test past the timeout, or when
    the output ends first, instead of waiting forever. Call it again for
    the lines after."""
    if not hasattr(process, "lines_read"):
        process.lines_read = queue.Queue()

        def pump():
            for line in process.stdout:
                process.lines_read.put(line)
            process.lines_read.put(None)

        threading.Thread(target=pump, daemon=True).start()
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = process.lines_read.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(
                f"not within {timeout} s; so far: {''.join(seen)[-2000:]}"
            ) from None
        if line is None:
            raise AssertionError(f"the output ended first: {''.join(seen)[-2000:]}")
        seen.append(line)
        if wanted(line):
            return seen


def join_threads(name: str, timeout: float = 60) -> None:
    """Wait for Spoon's background threads of that name to end (a run's is
    run-<pk>, a dotfiles apply's dotfiles-<user pk>): what they still write
    (the lease let go, the activity) must be done before the test's
    database is emptied, which on PostgreSQL would deadlock with it."""
    for thread in threading.enumerate():
        if thread.name == name:
            thread.join(timeout)


def until(check, failure="it never happened", timeout: float = 60, every: float = 0.1):
    """Ask check() again and again until it answers something true, and
    return that answer; past the timeout, fail the test with failure (a
    sentence, or a function of the last answer). How a test waits for a
    thing: it ends when the thing is there, never after a fixed time."""
    deadline = time.monotonic() + timeout
    while not (answer := check()):
        if time.monotonic() > deadline:
            raise AssertionError(failure(answer) if callable(failure) else failure)
        time.sleep(every)  # between two looks
    return answer


async def until_async(check, failure="it never happened", timeout: float = 60, every=0.1):
    """until(), on an event loop: check may be a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if inspect.isawaitable(answer):
            answer = await answer
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(failure(answer) if callable(failure) else failure)
        await asyncio.sleep(every)  # between two looks


def gate() -> tuple[str, str]:
    """A path in a box, and the shell line that waits until it exists. A
    script that waits at a gate shows the test its first steps, and goes on
    only when the test opens it (open_gate), however busy the machine."""
    path = f"/tmp/gate-{uuid.uuid4().hex[:8]}"
    return path, f"until [ -e {path} ]; do sleep 0.05; done"


def open_gate(box, path: str) -> None:
    # Straight through the engine: no event loop, so a page's may run beside it.
    code, output = docker_engine.exec_run(box.container_name, ["touch", path])
    assert code == 0, output
