"""On the Redis channel layer a consumer stays open for as long as it is
used: redis-py 8's default 5 s socket timeout cut channels-redis' blocking
receive, and so every run stream, after about 5 s."""

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from spoon.settings import redis_channel_layers
from tests.test_run_stream import connect, messages_until_closed
from workspaces import access, runs

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


async def test_a_run_stream_stays_open_for_over_a_minute_on_redis(
    workspace, session_cookie, redis_url, settings
):
    settings.CHANNEL_LAYERS = redis_channel_layers(redis_url)
    assert type(get_channel_layer()).__name__ == "RedisChannelLayer"
    script = "echo start; sleep 65; echo end"
    run = await sync_to_async(runs.start_run)(workspace, ["sh", "-c", script])
    ticket = await sync_to_async(access.issue)(
        workspace.user, workspace=workspace, opens=access.run_socket(run.pk)
    )
    cookie = await sync_to_async(session_cookie)(workspace.user)
    socket, connected = await connect(run.pk, cookie, ticket)
    assert connected
    got, code = await messages_until_closed(socket, timeout=120)
    assert "".join(m["text"] for m in got if m["type"] == "output") == "start\nend\n"
    assert got[-1]["status"] == "succeeded" and code == 1000
    # The consumer itself, not only its follower task, lived through it
    # (daphne closes the socket of a consumer that failed).
    crashed = socket.future.done() and socket.future.exception()
    assert not crashed, f"the consumer failed: {crashed!r}"
