"""A run's output, live over a WebSocket: what is recorded so far, then each
new piece as the runner appends it, with a status frame whenever the status
changes (queued, running) and the final status last.

The database is the record, read first and whenever something may have been
missed; new pieces come through the channel layer (workspaces.fanout) from
whichever process carries the run out, or, with the in-memory layer, from
reading the run's new chunks a few times a second. Either way a piece is
sent once, in order, and only new bytes are read. Same ticket and Origin
rules as the terminal; the ticket names the run's workspace."""

import asyncio
import json

from channels.generic.websocket import AsyncWebsocketConsumer
from django.db.models.functions import Substr

from spoon.websockets import EndsCleanly
from workspaces import access, fanout
from workspaces.models import Run, RunChunk

POLL_SECONDS = 0.2  # reading the database, when nothing is fanned out
QUIET_SECONDS = 5.0  # with fan-out: read it anyway after this long without news


class RunStreamConsumer(EndsCleanly, AsyncWebsocketConsumer):
    follower = None
    group = None

    async def connect(self):
        run_id = self.scope["url_route"]["kwargs"]["run_id"]
        grant = await access.admit(self, access.run_socket(run_id))
        if grant is None:
            return
        run = await Run.objects.filter(pk=run_id).afirst()
        if run is None or grant.workspace is None or run.workspace_id != grant.workspace.pk:
            await self.close(code=4403)
            return
        self.news: asyncio.Queue = asyncio.Queue()
        if fanout.available():
            # Joined before the first read: nothing appended after it is missed.
            self.group = fanout.group(run.pk)
            await self.channel_layer.group_add(self.group, self.channel_name)
        self.follower = self.background(self.follow(run.pk))

    async def follow(self, run_id: int):
        self.sent_chars, self.seq, said = 0, 0, None
        wait = QUIET_SECONDS if self.group else POLL_SECONDS
        run = await self.status_row(run_id)
        while not run.finished:
            if run.status != said:
                await self.send_json(self.status_of(run))
                said = run.status
            await self.read_chunks(run_id)
            # Pieces go out as they come, without reading anything, until a
            # status arrives or all is quiet for a while.
            while True:
                try:
                    news = await asyncio.wait_for(self.news.get(), wait)
                except TimeoutError:
                    break
                if "status" in news:
                    break
                await self.take_news(news, run_id)
            run = await self.status_row(run_id)
        # Its chunks became the record when it ended: send what is left of
        # it, read from where this page is (never the whole output again).
        rest = await (
            Run.objects.filter(pk=run_id)
            .annotate(rest=Substr("recorded_output", self.sent_chars + 1))
            .values_list("rest", flat=True)
            .aget()
        )
        if rest:
            await self.send_output(rest)
        await self.send_json(self.status_of(run))
        await self.close(code=1000)

    async def read_chunks(self, run_id: int):
        async for chunk in RunChunk.objects.filter(run_id=run_id, seq__gt=self.seq).order_by("seq"):
            await self.send_output(chunk.text)
            self.seq = chunk.seq

    async def take_news(self, news: dict, run_id: int):
        """A piece that follows the last one sent goes out as it is; a later
        one means one was missed, and the database has it."""
        seq = news.get("seq")
        if seq == self.seq + 1:
            await self.send_output(news["text"])
            self.seq = seq
        elif seq > self.seq:
            await self.read_chunks(run_id)

    async def run_news(self, message):
        self.news.put_nowait(message)

    async def send_output(self, text: str):
        await self.send_json({"type": "output", "text": text})
        self.sent_chars += len(text)

    @staticmethod
    async def status_row(run_id: int) -> Run:
        return await Run.objects.only("status", "exit_code", "error").aget(pk=run_id)

    @staticmethod
    def status_of(run: Run) -> dict:
        status, code, error = run.status, run.exit_code, run.error
        return {"type": "status", "status": status, "exit_code": code, "error": error}

    async def send_json(self, message):
        await self.send(text_data=json.dumps(message))

    async def receive(self, text_data=None, bytes_data=None):
        pass  # nothing to say to a run

    async def disconnect(self, code):
        if self.follower is not None:
            self.follower.cancel()
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
