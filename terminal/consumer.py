"""The WebSocket that bridges xterm.js in the browser to a PTY in the box.

Binary frames carry terminal bytes both ways; text frames carry JSON control
messages (resize, ack, ping). Reading from the box pauses while the browser
has more than HIGH_WATER bytes unacknowledged and resumes below LOW_WATER,
so a flood cannot outrun the tab and Ctrl-C still acts at once.
"""

import asyncio
import json
import logging
import re
import urllib.parse
import uuid
from datetime import timedelta

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from boxes import audit, docker_engine, leases, lifecycle, quota
from boxes.models import Lease
from boxes.use import using_box_async
from dotfiles.models import DotfilesRun
from spoon.websockets import EndsCleanly
from terminal.pty import attach
from workspaces import access

logger = logging.getLogger(__name__)

HIGH_WATER = 100_000
LOW_WATER = 10_000
MAX_QUEUED_INPUT = 8 * 1024 * 1024
FIRST_RESIZE_WAIT = 2.0
DOTFILES_WAIT = 30.0  # seconds a terminal waits for a box start's dotfiles
# The box stopped (idle, or by an operator): the page says why and does not
# reconnect by itself, so it does not start the box again; a keystroke does.
BOX_STOPPED = 4410
TAB = re.compile(r"[a-z0-9]{1,16}")


def watched(box, own: bool) -> tuple[float | None, list[str], str]:
    """What the status line says besides the connection: seconds until an
    idle stop, and (on the owner's own terminals) the staff watching and how
    full the home is, when nearly."""
    watchers = []
    if own:
        staff = box.leases.live().filter(kind=Lease.Kind.STAFF).order_by("acquired_at")
        for holder in staff.values_list("holder", flat=True):
            name, _, mode = holder.partition(", ")
            how = "and can type" if mode == "typing" else "read-only"
            watchers.append(f"Staff ({name}) have this terminal open, {how}.")
    return leases.idle_stop_in(box), watchers, quota.note(box) if own else ""


def session_and_cwd(box, workspace) -> tuple[str, str]:
    if workspace is None:
        return "main", box.home
    return f"ws-{workspace.pk}", workspace.folder(box)


class TerminalConsumer(EndsCleanly, AsyncWebsocketConsumer):
    async def converse(self, scope, receive, send):
        """Channels' dispatch loop, made lean for keystrokes: one receive at a
        time (not a task plus an asyncio.wait per message), no channel layer
        (a terminal joins no groups), and no database-connection cleanup (a
        thread hop) before a frame whose path never touches the database.
        That took each echo's time inside daphne from about 540 to 100 us."""
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        while True:
            message = await receive()
            if message["type"] == "websocket.receive":
                await self.websocket_receive(message)
            else:
                await self.dispatch(message)

    async def connect(self):
        self.terminal = None
        self.tasks: list[asyncio.Task] = []
        self.size = (80, 24)
        self.sized = asyncio.Event()
        self.window_open = asyncio.Event()
        self.window_open.set()
        self.unacked = 0
        self.early_input: list[bytes] = []
        self.notes: list[str] = []
        self.idle_note = ""  # the coming idle stop, while it is coming
        self.watchers: list[str] = []  # staff who have this box's terminal open
        self.home_note = ""  # the home nearly full, or over its quota (boxes.quota)
        self.grant = await access.admit(self)
        if self.grant is not None:
            self.tasks.append(asyncio.create_task(self.run()))

    async def run(self):
        grant = self.grant
        kind, holder = Lease.Kind.TERMINAL, f"terminal {uuid.uuid4().hex[:12]}"
        if grant.by_staff:  # recorded, and shown to the owner while it lasts
            kind = Lease.Kind.STAFF
            holder = f"{grant.user.get_username()}, {'typing' if grant.typing else 'read-only'}"
        record = None
        try:
            if grant.by_staff:
                record = await asyncio.to_thread(
                    audit.terminal_opened, grant.user, grant.owner, grant.typing
                )
            preferred = grant.workspace.image_ref if grant.workspace else ""
            await self.status("starting")
            async with using_box_async(grant.owner, kind, holder, preferred_image=preferred) as box:
                await self.serve(box)
                why = await asyncio.to_thread(lifecycle.stopped_because, box)
            if why == lifecycle.OUTSIDE_SPOON:
                # Nobody chose this stop (the engine restarted, say): the page
                # reconnects, and that starts the box again.
                message = (
                    "Your box stopped without Spoon stopping it; reconnecting starts it again."
                )
                await self.send(text_data=json.dumps({"type": "error", "message": message}))
                await self.close(code=1011)
            elif why:
                detail = f"Your box was {why}. Press a key or click here to start it again."
                await self.status("stopped", detail)
                await self.close(code=BOX_STOPPED)
            else:
                await self.close(code=1000)
        except (docker_engine.EngineError, lifecycle.BoxError) as exc:
            await self.send(text_data=json.dumps({"type": "error", "message": str(exc)}))
            await self.close(code=1011)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("terminal session failed")
            await self.close(code=1011)
        finally:
            if record is not None:
                await asyncio.shield(asyncio.to_thread(audit.terminal_closed, record))

    async def serve(self, box):
        """Attach to the box's tmux session and carry bytes until either side ends."""
        if box.update_pending:
            self.notes.append(
                f"Your box still runs {box.running_image}, as something else uses it; "
                f"this terminal's image takes over once nothing does."
            )
        await self.wait_for_dotfiles()
        try:
            await asyncio.wait_for(self.sized.wait(), FIRST_RESIZE_WAIT)
        except TimeoutError:
            pass
        session, cwd = session_and_cwd(box, self.grant.workspace)
        read_only = not self.grant.typing
        if read_only:
            self.notes.append(f"You are watching {self.grant.owner}'s terminal, read-only.")
        self.terminal = await attach(
            box, session, cwd, *self.size, tab=self.tab(), read_only=read_only
        )
        try:
            # tmux's screen hides text written before it; the status line shows notes.
            await self.say_state()
            for data in self.early_input:
                self.terminal.write(data)
            self.early_input.clear()
            watching = asyncio.create_task(self.watch(box))
            try:
                await self.pump_output()
            finally:
                watching.cancel()
        finally:
            await asyncio.shield(self.terminal.end())

    def tab(self) -> str:
        """Which browser tab this is (the page keeps an id per tab, so a
        reload finds its own window again); tabs without one share "0"."""
        query = urllib.parse.parse_qs(self.scope.get("query_string", b"").decode())
        tab = (query.get("tab") or ["0"])[0]
        return tab if TAB.fullmatch(tab) else "0"

    async def watch(self, box):
        """Keep the status line true: SPOON_BOX_IDLE_WARNING_SECONDS before an
        idle stop, say it is coming (taken back when something happens: an
        open tab is not activity, only what goes through it is); and on the
        owner's own terminals, say which staff have this box's terminal open."""
        warning = settings.SPOON_BOX_IDLE_WARNING_SECONDS
        every = min(5.0, max(0.5, warning / 4))
        own = not self.grant.by_staff
        while True:
            stop_in, watchers, home = await asyncio.to_thread(watched, box, own)
            note = self.idle_note
            if stop_in is not None and stop_in <= warning:
                note = note or (
                    f"Nothing has happened in your box for a while: it stops in about "
                    f"{max(1, round(stop_in / 60))} min. Type anything to keep it."
                )
            else:
                note = ""
            if (note, watchers, home) != (self.idle_note, self.watchers, self.home_note):
                self.idle_note, self.watchers, self.home_note = note, watchers, home
                await self.say_state()
            await asyncio.sleep(every)

    async def say_state(self):
        parts = [*self.watchers, *filter(None, [self.home_note]), *self.notes]
        if self.idle_note:
            await self.status("idle", " ".join([self.idle_note, *parts]))
        elif self.watchers:
            await self.status("watched", " ".join(parts))
        elif self.home_note:  # shown as a warning, not as all being well
            await self.status("warned", " ".join(parts))
        else:
            await self.status("connected", " ".join(["Connected.", *parts]) if parts else "")

    async def wait_for_dotfiles(self):
        """A box that just started applies dotfiles: say so, and wait a little
        for them. A slow or failed apply never keeps the terminal closed."""
        runs = DotfilesRun.objects.filter(
            user=self.grant.owner,
            status=DotfilesRun.Status.RUNNING,
            started_at__gt=timezone.now() - timedelta(minutes=2),
        )
        if not await runs.aexists():
            return
        await self.status("dotfiles")
        deadline = asyncio.get_running_loop().time() + DOTFILES_WAIT
        while await runs.aexists() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
        failed = await DotfilesRun.objects.filter(user=self.grant.owner).afirst()
        if failed is not None and failed.status == DotfilesRun.Status.FAILED:
            note = "Applying your dotfiles failed; see Settings -> Dotfiles for its log."
            self.notes.append(note)
            await self.send(text_data=json.dumps({"type": "error", "message": note}))

    async def pump_output(self):
        terminal = self.terminal
        while True:
            if self.unacked > HIGH_WATER:
                self.window_open.clear()
                await self.window_open.wait()
            data = await terminal.read()
            if not data:
                return
            self.unacked += len(data)
            await self.send(bytes_data=data)
            await self.activity()

    async def activity(self):
        box = self.terminal.box
        if leases.activity_due(box):
            await asyncio.to_thread(leases.touch, box)

    async def receive(self, text_data=None, bytes_data=None):
        if bytes_data is not None:
            await self.take_input(bytes_data)
            return
        try:
            message = json.loads(text_data)
            kind = message["type"]
        except (TypeError, ValueError, KeyError, RecursionError):
            logger.warning("terminal: ignored a malformed control frame")
            return
        if kind == "resize":
            await self.resize(message)
        elif kind == "ack":
            self.acknowledge(message)
        elif kind == "ping":
            await self.send(text_data='{"type": "pong"}')
        else:
            logger.warning("terminal: ignored a control frame of unknown type")

    async def take_input(self, data: bytes):
        """Hand keystrokes to the box at once. Never wait here for the box to
        read them: acks queue behind this, and a paste echoed back would stall
        both ways. The transport buffers instead, up to MAX_QUEUED_INPUT."""
        if not self.grant.typing:
            return  # staff watching read-only (tmux ignores them too)
        terminal = self.terminal
        if terminal is None:
            if sum(map(len, self.early_input)) + len(data) <= MAX_QUEUED_INPUT:
                self.early_input.append(data)
            return
        if terminal.unsent() + len(data) > MAX_QUEUED_INPUT:
            logger.warning("terminal input dropped: the box is not reading it")
            return
        terminal.write(data)
        if self.idle_note:  # a keystroke keeps the box: say so at once
            await asyncio.to_thread(leases.touch, terminal.box, True)
            self.idle_note = ""
            await self.say_state()
            return
        await self.activity()

    async def resize(self, message):
        cols, rows = message.get("cols"), message.get("rows")
        valid = all(
            isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 1000 for n in (cols, rows)
        )
        if not valid:
            logger.warning("terminal: ignored a resize to %r x %r", cols, rows)
            return
        self.size = (cols, rows)
        self.sized.set()
        if self.terminal is not None:
            await self.terminal.resize(cols, rows)

    def acknowledge(self, message):
        count = message.get("bytes")
        if not _whole(count) or count < 0:
            logger.warning("terminal: ignored an ack of %r", count)
            return
        self.unacked = max(0, self.unacked - count)
        if self.unacked <= LOW_WATER:
            self.window_open.set()

    async def status(self, state: str, detail: str = ""):
        message = {"type": "status", "state": state}
        if detail:
            message["detail"] = detail
        await self.send(text_data=json.dumps(message))

    async def disconnect(self, code):
        # Also called after an error (spoon.websockets.EndsCleanly), maybe twice.
        tasks = getattr(self, "tasks", [])
        for task in tasks:
            task.cancel()
        # Each lets go of what it holds (the tmux client, the lease) as it ends.
        await asyncio.gather(*tasks, return_exceptions=True)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
