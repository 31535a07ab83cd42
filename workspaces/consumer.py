"""A run's output, live over a WebSocket: what is stored so far, then what
the runner stores next (it saves every quarter second), with a status frame
whenever the status changes (queued, running) and the final status last.
Same ticket and Origin rules as the terminal; the ticket names the run's
workspace. Following the stored output, not an in-process channel, works
whichever process or thread carries the run out."""

import asyncio
import json

from channels.generic.websocket import AsyncWebsocketConsumer

from workspaces import access
from workspaces.models import Run

POLL_SECONDS = 0.2


class RunStreamConsumer(AsyncWebsocketConsumer):
    follower = None

    async def connect(self):
        grant = await access.admit(self)
        if grant is None:
            return
        run_id = self.scope["url_route"]["kwargs"]["run_id"]
        run = await Run.objects.filter(pk=run_id).afirst()
        if run is None or grant.workspace is None or run.workspace_id != grant.workspace.pk:
            await self.close(code=4403)
            return
        self.follower = asyncio.create_task(self.follow(run.pk))

    async def follow(self, run_id: int):
        sent, said = 0, None
        while True:
            run = await Run.objects.aget(pk=run_id)
            if not run.finished and run.status != said:
                await self.send_json(self.status_of(run))
                said = run.status
            if len(run.output) > sent:
                await self.send_json({"type": "output", "text": run.output[sent:]})
                sent = len(run.output)
            if run.finished:
                break
            await asyncio.sleep(POLL_SECONDS)
        await self.send_json(self.status_of(run))
        await self.close(code=1000)

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
