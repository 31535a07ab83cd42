"""Commands in a box: collected with run, streamed with stream, always ending
in a Result that says what really happened."""

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings

from boxes import commands, docker_engine, lifecycle
from tests.waits import gate, open_gate, until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def box(engine, make_user):
    return lifecycle.ensure_box(make_user())


def processes(box, pattern):
    result = commands.run(box, ["sh", "-c", f"pgrep -af '{pattern}' | grep -v pgrep || true"])
    return result.output.decode().strip()


def test_run_collects_output_exit_code_and_duration(box):
    result = commands.run(box, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result.exit_code == 3
    assert sorted(result.output.splitlines()) == [b"err", b"out"]  # two pipes: any order
    assert 0 < result.duration < 10
    assert result.error == ""


def test_run_as_the_box_user_with_env_and_cwd(box):
    commands.run(box, ["mkdir", "-p", "proj"])
    result = commands.run(
        box,
        ["sh", "-c", "id -u; pwd; echo $GREETING"],
        env={"GREETING": "hi"},
        cwd=f"{box.home}/proj",
    )
    assert result.output.decode().split() == ["1000", f"{box.home}/proj", "hi"]


def test_missing_command_is_a_non_zero_result_with_the_reason(box):
    result = commands.run(box, ["no-such-tool", "--flag"])
    assert result.exit_code == commands.NOT_FOUND
    assert result.error == "command not found: no-such-tool"


def test_missing_directory_is_a_non_zero_result(box):
    result = commands.run(box, ["true"], cwd="/nowhere")
    assert result.exit_code == 126
    assert result.error == "no such directory: /nowhere"


def test_timeout_kills_the_process_inside_the_box(box):
    started = time.monotonic()
    result = commands.run(box, ["sh", "-c", "sleep 300 & sleep 301; echo never"], timeout=1)
    assert time.monotonic() - started < 30, "not the 300 s the command would take"
    assert result.exit_code == commands.TIMED_OUT
    assert result.error == "timed out after 1 s"
    assert b"never" not in result.output
    assert processes(box, "sleep 30") == "", "the process and its children are gone"


def test_a_timeout_returns_even_when_a_daemon_holds_the_output(box):
    started = time.monotonic()
    result = commands.run(box, ["sh", "-c", "setsid sleep 600 & sleep 300"], timeout=1)
    assert result.exit_code == commands.TIMED_OUT
    assert time.monotonic() - started < 30, "the call returns after a short grace"


def test_exec_records_are_removed_when_commands_end(box):
    for _ in range(3):
        commands.run(box, ["true"])
    listing = commands.run(box, ["ls", "/run/spoon/exec"]).output.split()
    assert len(listing) == 1, "only the record of the ls that is running"


def test_output_is_capped(box, settings):
    settings.SPOON_EXEC_OUTPUT_LIMIT = 1000
    result = commands.run(box, ["sh", "-c", "head -c 5000 /dev/zero"])
    assert result.ok and result.truncated and len(result.output) == 1000


def test_a_removed_box_is_a_non_zero_result(box):
    docker_engine.remove_container(box.container_name)
    result = commands.run(box, ["true"])
    assert result.exit_code == commands.ENGINE_FAILED
    assert "is not running (it was stopped or removed)" in result.error


def test_a_stopped_box_is_a_non_zero_result(box):
    docker_engine.stop_container(box.container_name, timeout=1)
    result = commands.run(box, ["true"])
    assert result.exit_code == commands.ENGINE_FAILED
    assert "is not running" in result.error


@override_settings(DOCKER_HOST="unix:///nonexistent/docker.sock")
def test_engine_down_is_a_non_zero_result(box):
    result = commands.run(box, ["true"])
    assert result.exit_code == commands.ENGINE_FAILED
    assert "does not answer" in result.error

    async def streamed():
        return [item async for item in commands.stream(box, ["true"])]

    (only,) = async_to_sync(streamed)()
    assert only.exit_code == commands.ENGINE_FAILED and "does not answer" in only.error


def collect(box, argv, **options):
    async def go():
        items = []
        async for item in commands.stream(box, argv, **options):
            items.append((time.monotonic(), item))
        return items

    return async_to_sync(go)()


def test_stream_yields_output_in_order_as_it_comes_then_the_result(box):
    path, wait = gate()

    async def go():
        items = []
        script = f"echo line1; {wait}; echo line2; exit 4"
        async for item in commands.stream(box, ["sh", "-c", script]):
            items.append(item)
            if item == b"line1\n":  # it came as it was made: line2 waits for it
                await asyncio.to_thread(open_gate, box, path)
        return items

    *chunks, result = async_to_sync(go)()
    assert isinstance(result, commands.Result) and result.exit_code == 4
    assert b"".join(chunks) == b"line1\nline2\n"


def test_stream_keeps_every_byte_of_a_large_output(box):
    items = collect(box, ["sh", "-c", "seq 1 200000"])
    output = b"".join(item for _, item in items[:-1])
    assert output == b"".join(b"%d\n" % i for i in range(1, 200001))
    assert items[-1][1].ok


def test_stream_timeout_kills_the_process(box):
    items = collect(box, ["sh", "-c", "echo started; sleep 300"], timeout=3)
    result = items[-1][1]
    assert result.exit_code == commands.TIMED_OUT
    assert items[0][1] == b"started\n"
    assert processes(box, "sleep 300") == ""


def test_abandoning_a_stream_ends_the_process(box):
    async def first_chunk_then_leave():
        stream = commands.stream(box, ["sh", "-c", "echo go; sleep 300"])
        first = await stream.__anext__()
        await stream.aclose()
        return first

    assert async_to_sync(first_chunk_then_leave)() == b"go\n"
    until(lambda: processes(box, "sleep 300") == "", "the process outlived its stream", 30)


def test_missing_command_streams_a_non_zero_result(box):
    items = collect(box, ["no-such-tool"])
    result = items[-1][1]
    assert result.exit_code == commands.NOT_FOUND
    assert result.error == "command not found: no-such-tool"


def test_many_streams_at_once_need_no_thread_each(box):
    import threading

    async def many():
        async def one(i):
            return [x async for x in commands.stream(box, ["sh", "-c", f"sleep 1; echo {i}"])]

        before = threading.active_count()
        task = asyncio.gather(*(one(i) for i in range(20)))
        during = before
        while not task.done():
            during = max(during, threading.active_count())
            await asyncio.sleep(0.05)  # a look at the threads while the streams are open
        return before, during, await task

    before, during, results = async_to_sync(many)()
    assert [r[0] for r in results] == [b"%d\n" % i for i in range(20)]
    assert during - before < 20, "streams wait on sockets, not on threads"


def test_capped_output_keeps_the_first_or_the_last():
    first = commands.CappedOutput(5)
    for piece in (b"abc", b"defg", b"h"):
        first.add(piece)
    assert (first.value, first.truncated) == (b"abcde", True)
    last = commands.CappedOutput(5, empty="", keep_last=True)
    for piece in ("abc", "defg", "h"):
        last.add(piece)
    assert (last.value, last.truncated) == ("defgh", True)
    whole = commands.CappedOutput(5, empty="")
    whole.add("abcde")
    assert (whole.value, whole.truncated) == ("abcde", False)
