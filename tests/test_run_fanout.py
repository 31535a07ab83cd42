"""A run's output is appended in pieces, never rewritten, and reaches a page
following it from another daphne process live, through the Redis layer."""

import asyncio
import json
import time

import pytest
import websockets

from boxes.models import Box
from spoon.settings import redis_channel_layers
from tests.support import SpoonServer, database_url
from tests.waits import gate, open_gate
from workspaces import access, consumer, runs
from workspaces.models import Run, RunChunk

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.both_databases]


def test_output_is_appended_in_pieces_that_become_the_record(workspace, wait_for_run):
    script = "for i in 1 2 3 4; do echo line$i; sleep 0.5; done"
    run = runs.start_run(workspace, ["sh", "-c", script])
    seen_pieces, seen_record = [], []
    while not run.finished:
        seen_pieces.append(list(RunChunk.objects.filter(run=run).values_list("seq", "text")))
        seen_record.append(Run.objects.get(pk=run.pk).recorded_output)
        time.sleep(0.1)  # a look at the rows while it runs, ten a second
        run.refresh_from_db()
    while_running = [pieces for pieces in seen_pieces if pieces]
    assert len(while_running) > 2, "pieces were there while it ran"
    for earlier, later in zip(while_running, while_running[1:], strict=False):
        assert later[: len(earlier)] == earlier, "a piece, once written, never changes"
    assert set(seen_record) <= {"", run.output}
    assert run.recorded_output == "line1\nline2\nline3\nline4\n"
    assert not RunChunk.objects.filter(run=run).exists(), "the pieces became the record"


@pytest.fixture
def other_process(engine, redis_url, settings, tmp_path):
    """daphne in a process of its own, on this run's database and Redis."""
    server = SpoonServer(
        settings.DATA_DIR, log_dir=tmp_path, DATABASE_URL=database_url(), REDIS_URL=redis_url
    ).start()
    yield server
    server.stop()


def test_a_follower_on_another_process_sees_the_run_live(
    workspace, session_cookie, redis_url, other_process, settings
):
    settings.CHANNEL_LAYERS = redis_channel_layers(redis_url)  # this process carries it out
    first, wait_first = gate()
    second, wait_second = gate()
    script = f"echo one; {wait_first}; echo two; {wait_second}; echo three"
    run = Run.objects.create(workspace=workspace, argv=["sh", "-c", script], token="fanout-1")
    ticket = access.issue(workspace.user, workspace=workspace, opens=access.run_socket(run.pk))
    cookie = session_cookie(workspace.user)
    box = Box.objects.get(user=workspace.user)

    async def follow():
        arrivals = []
        async with websockets.connect(
            f"ws://localhost/ws/runs/{run.pk}/?ticket={ticket}",
            host="127.0.0.1", port=other_process.port, origin="http://localhost",
            additional_headers={"Cookie": cookie},
        ) as socket:  # fmt: skip
            started = asyncio.get_running_loop().run_in_executor(None, runs.carry_out, run)
            async for frame in socket:
                arrivals.append((time.monotonic(), json.loads(frame)))
                text = arrivals[-1][1].get("text", "")
                # Each line opens the way to the next: it came while the run went on.
                for line, path in (("one", first), ("two", second)):
                    if line in text:
                        await asyncio.to_thread(open_gate, box, path)
                        arrivals.append((time.monotonic(), {"type": "opened", "gate": line}))
            await started
        return arrivals

    arrivals = asyncio.run(follow())
    output = [(at, m["text"]) for at, m in arrivals if m["type"] == "output"]
    assert "".join(text for _, text in output) == "one\ntwo\nthree\n"
    assert arrivals[-1][1]["status"] == "succeeded"
    assert len(output) >= 3, "each line came as it was printed"
    # News, not the follower's read after QUIET_SECONDS without any: the
    # next line came within that of being let out.
    opened = {m["gate"]: at for at, m in arrivals if m["type"] == "opened"}
    came = {text.strip(): at for at, text in output}
    assert came["two"] - opened["one"] < consumer.QUIET_SECONDS
    assert came["three"] - opened["two"] < consumer.QUIET_SECONDS
