"""Running commands in a box: `run` collects, `stream` yields as it comes.

Both open the command with boxes.processes (so a timeout, or leaving a stream
early, ends it inside the box), and every way of failing to start comes back
as a non-zero Result carrying the real reason.
"""

import asyncio
import codecs
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings

from boxes import docker_engine, lifecycle, processes
from boxes.models import Box

logger = logging.getLogger(__name__)

ENGINE_FAILED = 125  # docker's own code for "could not run it at all"
TIMED_OUT = 124  # as coreutils' timeout
NOT_FOUND = 127
KILL_GRACE = 3.0  # seconds a killed command gets to let go of its output
JOB_RUNNER = "/usr/local/bin/spoon-job"
# How long a job's follower waits for an engine that went away (restarting)
# before it records the engine's failure as the job's end.
ENGINE_BACK_SECONDS = 120


@dataclass
class Result:
    exit_code: int
    output: bytes
    duration: float
    error: str = ""
    truncated: bool = False
    # Set when Spoon ended it at a limit: "time" (the timeout) or "silence"
    # (no output for that long).
    stopped_by: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def _error_for(code: int, output: bytes, argv: list[str]) -> str:
    if code == NOT_FOUND and b"spoon: command not found" in output:
        return f"command not found: {argv[0]}"
    if code == 126 and b"spoon: no such directory" in output:
        return output.decode(errors="replace").strip().removeprefix("spoon: ")
    return ""


def _engine_failure(box: Box, exc: docker_engine.EngineError, started: float) -> Result:
    if isinstance(exc, docker_engine.NotFound) or "is not running" in str(exc):
        reason = f"The box {box.container_name} is not running (it was stopped or removed)."
    else:
        reason = str(exc)
    return Result(ENGINE_FAILED, b"", time.monotonic() - started, error=reason)


class CappedOutput:
    """Output kept to `limit` bytes (or characters, for text): the first
    ones, or with keep_last the last ones. `truncated` says whether any
    were left out."""

    def __init__(self, limit: int, empty: bytes | str = b"", keep_last: bool = False):
        self.limit = limit
        self.keep_last = keep_last
        self.truncated = False
        self._empty = empty
        self._pieces: list = []
        self._size = 0

    def add(self, piece: bytes | str) -> None:
        if self.keep_last:
            kept = self.value + piece
            if len(kept) > self.limit:
                kept, self.truncated = kept[len(kept) - self.limit :], True
            self._pieces, self._size = [kept], len(kept)
            return
        room = self.limit - self._size
        if len(piece) > room:
            piece, self.truncated = piece[: max(room, 0)], True
        if piece:
            self._pieces.append(piece)
            self._size += len(piece)

    @property
    def value(self) -> bytes | str:
        if len(self._pieces) > 1:
            self._pieces = [self._empty.join(self._pieces)]
        return self._pieces[0] if self._pieces else self._empty


def run(
    box: Box,
    argv: list[str],
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    input: bytes | None = None,
) -> Result:
    """Run argv as the box user and wait for it; output is capped at
    SPOON_EXEC_OUTPUT_LIMIT."""

    async def collect() -> Result:
        output = CappedOutput(settings.SPOON_EXEC_OUTPUT_LIMIT)
        async for item in stream(box, argv, env=env, cwd=cwd, timeout=timeout, input=input):
            if isinstance(item, Result):
                item.output, item.truncated = output.value, output.truncated
                return item
            output.add(item)
        raise AssertionError("stream() always ends with a Result")

    return async_to_sync(collect)()


SAVE_EVERY = 0.25  # seconds between saves of output that pages follow


def run_following(
    box: Box,
    argv: list[str],
    take_text: Callable[[str, bool], None],
    save: Callable[[], None],
    **options,
) -> Result:
    """Run argv as `run` does, handing its output to take_text(text, final)
    as UTF-8 text as it comes (characters split between reads made whole),
    and calling save() at most every SAVE_EVERY seconds, within SAVE_EVERY of
    any output (output that comes just after a save is saved soon after, not
    with the next output, which may be an hour away) and once at the end, so
    a page can follow it. take_text runs on the event loop and must not
    block; save runs in a thread of its own, one at a time, and may use the
    database. The Result carries no output: take_text had it."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    saving = sync_to_async(save, thread_sensitive=False)

    async def follow() -> Result:
        one_at_a_time = asyncio.Lock()
        saved_at = 0.0
        later: asyncio.Task | None = None

        async def save_now() -> None:
            nonlocal saved_at
            async with one_at_a_time:
                saved_at = time.monotonic()
                await saving()

        async def save_in(delay: float) -> None:
            await asyncio.sleep(delay)
            await save_now()

        try:
            async for item in stream(box, argv, **options):
                if isinstance(item, Result):
                    take_text(decoder.decode(b"", final=True), True)
                    if later is not None:
                        await later  # never two saves at once
                    await save_now()
                    return item
                take_text(decoder.decode(item), False)
                if later is not None and later.done():
                    later.result()  # a save that failed fails here, as one made inline would
                    later = None
                wait = saved_at + SAVE_EVERY - time.monotonic()
                if wait <= 0:
                    await save_now()
                elif later is None:
                    later = asyncio.create_task(save_in(wait))
        finally:
            if later is not None and not later.done():
                later.cancel()
        raise AssertionError("stream() always ends with a Result")

    return async_to_sync(follow)()


async def stream(
    box: Box,
    argv: list[str],
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    input: bytes | None = None,
    token: str | None = None,
    silence: float | None = None,
    detached: bool = False,
    refollows: int = 3,
) -> AsyncIterator[bytes | Result]:
    """Yield output chunks as they come, then the Result. Leaving the loop
    early ends the process in the box, and so do `timeout` (seconds in all)
    and `silence` (seconds without output). `input` becomes the command's
    stdin; `processes.kill(box, token)` from anywhere ends the command.

    detached (with a token) runs the command as a job of the box (spoon-job):
    leaving the loop, or this process dying, lets go of the stream only, and
    the command runs on, its output and exit status kept in the home. Asked
    again with the same token, it follows the job from its first output
    instead of starting it twice; with argv None it only follows, and a job
    that never started is "lost" like one its box stopped under. A follow
    cut off while the box runs on (an engine restarted with live-restore)
    is followed again, up to `refollows` times, from where it was."""
    started = time.monotonic()
    if detached:
        given = ["--input"] if input is not None else []
        job = [JOB_RUNNER, *given, token, cwd or box.home, *argv] if argv else [
            JOB_RUNNER, "--follow", token
        ]  # fmt: skip
        opening = processes.open_process(box, job, env=env, stdin=input is not None)
    else:
        opening = processes.open_process(
            box, argv, env=env, cwd=cwd, stdin=input is not None, token=token
        )
    try:
        process = await opening
    except docker_engine.EngineError as exc:
        yield _engine_failure(box, exc, started)
        return
    job_said = bytearray()  # spoon-job's own word on how the job ended

    async def read() -> bytes:
        if not detached:
            return await process.read()
        while True:
            tag, data = await process.read_tagged()
            if tag != processes.STDERR or not data:
                return data
            job_said.extend(data[:4096])

    async def send_input():
        # Beside the reading below, not before it: a command may write much
        # before it reads its input, and would wait on us forever.
        try:
            process.write(input)
            await process.drain()
            process.close_input()  # the command sees the end of its input
        except OSError:
            pass  # the command ended or the box went; the result will say

    sending = asyncio.create_task(send_input()) if input is not None else None
    first_output = bytearray()
    finished = False
    stopped_by = ""
    broken: Exception | None = None
    deadline = started + timeout if timeout else None
    last_output = started
    sent = 0
    try:
        while True:
            now = time.monotonic()
            waits = [deadline - now] if deadline is not None else []
            if silence and not stopped_by:
                waits.append(last_output + silence - now)
            try:
                data = await asyncio.wait_for(read(), max(min(waits), 0) if waits else None)
            except TimeoutError:
                if stopped_by:
                    break  # killed, yet something still holds the output open
                timed_out = deadline is not None and time.monotonic() >= deadline
                stopped_by = "time" if timed_out else "silence"
                await asyncio.to_thread(processes.kill, box, token if detached else process.token)
                deadline = time.monotonic() + KILL_GRACE
                continue
            except OSError as exc:
                broken = exc
                break
            if not data:
                break
            last_output = time.monotonic()
            if len(first_output) < 4096:
                first_output += data[:4096]
            sent += len(data)
            yield data
        finished = True
    finally:
        if sending is not None:
            sending.cancel()
        if finished:
            process.close()
        else:
            await asyncio.shield(process.end())
    duration = time.monotonic() - started
    if stopped_by == "time":
        yield Result(TIMED_OUT, b"", duration, f"timed out after {timeout:g} s", stopped_by="time")
        return
    if stopped_by == "silence":
        why = f"printed nothing for {silence:g} s"
        yield Result(TIMED_OUT, b"", duration, why, stopped_by="silence")
        return
    try:
        code = await process.exit_code()
    except docker_engine.EngineUnreachable as exc:
        if not (detached and await _engine_back(ENGINE_BACK_SECONDS)):
            yield _engine_failure(box, exc, started)
            return
        # The engine restarted under the job: did its box live through it?
        code, broken = None, exc
    except docker_engine.EngineError as exc:
        if not detached:
            yield _engine_failure(box, exc, started)
            return
        code, broken = None, exc  # the exec is gone, and perhaps not the job
    no_jobs = detached and f"command not found: {JOB_RUNNER}".encode() in job_said
    if no_jobs and argv:
        # A box on an image from before spoon-job: attached, as before it.
        async for item in stream(box, argv, env=env, cwd=cwd, timeout=timeout, input=input,
                                 token=token, silence=silence):  # fmt: skip
            yield item
        return
    lost = no_jobs or (detached and re.search(rb"spoon-job: (lost|no such job)", job_said))
    # Killed (137, 143) or cut off: was it the box that went away under it?
    if broken is not None or code is None or code in (137, 143) or lost:
        try:
            reason = await _why_the_box_went(box, wait_for_engine=detached)
        except docker_engine.EngineError as exc:
            yield _engine_failure(box, exc, started)
            return
        if reason is not None:
            why = f"The command did not finish: its box was {reason} while it ran."
            yield Result(ENGINE_FAILED, b"", duration, why)
            return
        if lost:
            why = "The command did not finish: it was killed, or never started, and left no status."
            yield Result(ENGINE_FAILED, b"", duration, why)
            return
        if detached and refollows and b"spoon-job: exit" not in job_said:
            # The box runs on, and so may the job: follow it again.
            again = _followed_again(box, token, sent, started, timeout, silence, refollows - 1)
            async for item in again:
                yield item
            return
        if broken is not None or code is None:
            why = f"The command did not finish: the stream broke ({broken})."
            yield Result(ENGINE_FAILED, b"", duration, why)
            return
    if detached and b"spoon-job: out of memory" in job_said:
        why = f"out of memory (limit {settings.SPOON_BOX_MEMORY}): the kernel killed it"
        yield Result(code, b"", duration, why)
        return
    yield Result(code, b"", duration, _error_for(code, bytes(first_output), argv or [token]))


async def _followed_again(
    box: Box,
    token: str,
    skip: int,
    started: float,
    timeout: float | None,
    silence: float | None,
    refollows: int,
) -> AsyncIterator[bytes | Result]:
    """A job followed again from its first output, less the `skip` bytes
    already had, within what is left of its timeout."""
    logger.info("job %s in %s: following it again after %d bytes", token, box, skip)
    left = max(started + timeout - time.monotonic(), 0.001) if timeout else None
    options = {"timeout": left, "silence": silence, "refollows": refollows}
    async for item in stream(box, None, token=token, detached=True, **options):
        if isinstance(item, Result):
            item.duration = time.monotonic() - started
            if item.stopped_by == "time":
                item.error = f"timed out after {timeout:g} s"
        elif skip:
            item, skip = item[skip:], max(skip - len(item), 0)
            if not item:
                continue
        yield item


async def _engine_back(seconds: float) -> bool:
    """Wait for the engine to answer again, up to `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            await asyncio.to_thread(docker_engine.version)
            return True
        except docker_engine.EngineError:
            await asyncio.sleep(1)
    return False


async def _why_the_box_went(box: Box, wait_for_engine: bool) -> str | None:
    """Why the box stopped under a command cut off, or None while it runs. The
    engine may be going down just then, or answer once more as it goes: with
    wait_for_engine it is asked until it answers for good, as a job outlives
    the engine when its box does."""
    deadline = time.monotonic() + (ENGINE_BACK_SECONDS if wait_for_engine else 0)
    while True:
        try:
            return await asyncio.to_thread(lifecycle.stopped_because, box)
        except docker_engine.EngineUnreachable:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(1)
