"""The one way into a box: a process as an asyncio duplex stream, with or
without a TTY, whose end() really ends it inside the box."""

import asyncio
import hashlib

import pytest
from django.test import override_settings

from boxes import docker_engine, lifecycle, processes
from tests.waits import until_async

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def box(engine, make_user):
    return lifecycle.ensure_box(make_user())


async def everything(process) -> list[tuple[int, bytes]]:
    got = []
    while (item := await process.read_tagged())[1]:
        got.append(item)
    return got


async def running(box, pattern) -> str:
    process = await processes.open_process(
        box, ["sh", "-c", f"pgrep -af '{pattern}' | grep -v pgrep || true"]
    )
    return b"".join([data async for data in _reads(process)]).decode().strip()


async def _reads(process):
    while data := await process.read():
        yield data


async def test_stdout_and_stderr_stay_apart_without_a_tty(box):
    process = await processes.open_process(
        box, ["sh", "-c", "echo out; sleep 0.2; echo err >&2; exit 5"]
    )
    assert await everything(process) == [
        (processes.STDOUT, b"out\n"),
        (processes.STDERR, b"err\n"),
    ]
    assert await process.exit_code() == 5


async def test_it_runs_as_the_box_user_in_its_folder_with_its_environment(box):
    await (await processes.open_process(box, ["mkdir", "-p", "proj"])).exit_code()
    process = await processes.open_process(
        box,
        ["sh", "-c", 'id -u; pwd; echo "$GREETING"; echo "$HOME"'],
        env={"GREETING": "hi there"},
        cwd=f"{box.home}/proj",
    )
    output = b"".join([data async for data in _reads(process)]).decode().splitlines()
    assert output == ["1000", f"{box.home}/proj", "hi there", box.home]


async def test_input_and_output_go_both_ways_at_once(box):
    process = await processes.open_process(box, ["cat"], stdin=True)
    for line in (b"one\n", b"two\n"):
        process.write(line)
        await process.drain()
        assert await asyncio.wait_for(process.read(), 10) == line, "echoed before the input ends"
    process.close_input()
    assert await process.read() == b""
    assert await process.exit_code() == 0


async def test_a_large_output_arrives_whole_through_the_engines_frames(box):
    script = "head -c 8000000 /dev/urandom | tee /tmp/big | sha256sum >&2; cat /tmp/big"
    process = await processes.open_process(box, ["sh", "-c", script])
    stdout, stderr = bytearray(), bytearray()
    for stream, data in await everything(process):
        (stdout if stream == processes.STDOUT else stderr).extend(data)
    assert len(stdout) == 8_000_000
    assert stderr.decode().split()[0] == hashlib.sha256(stdout).hexdigest()


async def test_a_tty_has_its_size_and_carries_raw_bytes(box):
    process = await processes.open_process(
        box, ["sh", "-c", "stty size; tty; printf '\\344\\270\\255\\n'"], tty=True, size=(132, 43)
    )
    output = b"".join([data async for data in _reads(process)])
    lines = output.split(b"\r\n")
    assert lines[0] == b"43 132"
    assert lines[1].startswith(b"/dev/pts/")
    assert lines[2] == "中".encode()
    await process.resize(80, 24)  # after the end: refused by the engine, and survived


async def showing(box, pattern):
    """Wait until a process matching pattern runs in the box."""

    async def runs() -> bool:
        return pattern in await running(box, pattern)

    await until_async(runs, f"{pattern} never ran")


async def test_end_ends_the_process_and_its_children_inside_the_box(box):
    process = await processes.open_process(box, ["sh", "-c", "sleep 600 & sleep 601"])
    await showing(box, "sleep 601")
    await process.end()
    assert await running(box, "sleep 60") == ""
    await process.end()  # twice is harmless


async def test_close_lets_go_and_leaves_the_process_running(box):
    process = await processes.open_process(box, ["sleep", "602"], token="spoon-test-close-1")
    process.close()
    await showing(box, "sleep 602")
    await asyncio.to_thread(processes.kill, box, "spoon-test-close-1")
    assert await running(box, "sleep 602") == "", "kill() by its token, from anywhere"


async def test_a_stopped_box_or_a_stopped_engine_is_a_clear_error(box):
    with override_settings(DOCKER_HOST="unix:///nonexistent/docker.sock"):
        with pytest.raises(docker_engine.EngineUnreachable, match="does not answer"):
            await processes.open_process(box, ["true"])
    await asyncio.to_thread(docker_engine.stop_container, box.container_name, 1)
    with pytest.raises(docker_engine.EngineError, match="is not running"):
        await processes.open_process(box, ["true"])
