"""A Docker Engine that answers slowly: every request ends within
SPOON_DOCKER_TIMEOUT (and a little), saying so, instead of hanging."""

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from tests import reliability
from tests.terminal_client import TerminalClient
from workspaces import access

pytestmark = pytest.mark.django_db(transaction=True)

ENGINE = "/var/run/docker.sock"
DELAY = 5.0  # seconds before the engine's answer passes the proxy
TIMEOUT = 1


class SlowEngine:
    """The real engine behind a UNIX socket that holds each answer back
    DELAY seconds (requests pass at once)."""

    def __init__(self, path):
        self.path = str(path)
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self.thread.start()
        started.wait(5)

    def _serve(self, started):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_unix_server(self._relay, self.path)
        )
        started.set()
        self.loop.run_forever()

    async def _relay(self, client_reader, client_writer):
        engine_reader, engine_writer = await asyncio.open_unix_connection(ENGINE)

        async def pipe(reader, writer, delay):
            try:
                first = True
                while data := await reader.read(65536):
                    if first and delay:
                        await asyncio.sleep(delay)  # the slow engine this test makes
                    first = False
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        await asyncio.gather(
            pipe(client_reader, engine_writer, 0), pipe(engine_reader, client_writer, DELAY)
        )

    def close(self):
        async def shut():
            self.server.close()
            relays = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for relay in relays:
                relay.cancel()
            await asyncio.gather(*relays, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def slow_engine(engine, settings, tmp_path):
    slow = SlowEngine(tmp_path / "slow.sock")
    settings.DOCKER_HOST = f"unix://{slow.path}"
    settings.DOCKER_TIMEOUT = TIMEOUT
    yield slow
    slow.close()


def says_slow(text: str) -> bool:
    return f"did not answer within {TIMEOUT} s" in text or "does not answer" in text


def test_pages_answer_within_the_timeout_and_say_why(slow_engine, make_user):
    staff = Client()
    staff.force_login(make_user(is_staff=True))
    began = time.monotonic()
    health = staff.get("/healthz")
    assert time.monotonic() - began < DELAY
    assert health.status_code == 503 and says_slow(health.json()["docker"]["error"])

    user = Client()
    user.force_login(make_user())
    began = time.monotonic()
    started = user.post("/box/start", follow=True)
    assert time.monotonic() - began < 3 * DELAY
    assert b"Your box could not start" in started.content
    assert says_slow(started.content.decode())


async def test_a_terminal_says_why_within_the_timeout(slow_engine, make_user, session_cookie):
    user = await sync_to_async(make_user)()
    client = TerminalClient(await sync_to_async(session_cookie)(user),
                            await sync_to_async(access.issue)(user))  # fmt: skip
    began = time.monotonic()
    assert await client.open()
    assert await client.wait_closed(timeout=6 * DELAY) == 1011
    assert time.monotonic() - began < 6 * DELAY
    errors = client.errors
    assert errors and says_slow(errors[-1]), errors
    reliability.survived(
        "an engine that answers slowly (each answer held back 5 s, timeout 1 s)",
        "/healthz 503, the box's Start and the terminal each say the engine did not answer in time",
        "the same sentence in the log; no request hangs",
    )
