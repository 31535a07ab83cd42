"""The terminal WebSocket against a real box, through the real ASGI stack."""

import hashlib
import time
from datetime import timedelta
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission
from django.core import signing
from django.test import Client
from django.utils import timezone

from boxes import commands, lifecycle
from boxes.models import Box, Lease
from tests import reliability
from tests.terminal_client import TerminalClient
from tests.waits import until_async
from workspaces import access, folders
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice(engine, make_user, session_cookie):
    user = make_user()
    user.cookie = session_cookie(user)
    return user


def ticket_for(user, **kwargs):
    return access.issue(user, **kwargs)


def in_box(user, script):
    box = Box.objects.get(user=user)
    return commands.run(box, ["sh", "-c", script]).output.decode()


async def opened(user, **kwargs) -> TerminalClient:
    ticket = await sync_to_async(ticket_for)(user, **kwargs)
    client = TerminalClient(user.cookie, ticket)
    assert await client.open()
    return client


async def prompt(client):
    await client.read_until(b"$ ")


async def test_echo_round_trip_and_status(alice):
    client = await opened(alice)
    await prompt(client)
    await client.type("echo $((6*7))\r")
    output = await client.read_until(b"42\r\n")
    assert b"42" in output
    assert client.statuses[:2] == ["starting", "connected"]
    await client.close()


async def test_first_resize_and_later_resizes_reach_stty(alice):
    ticket = await sync_to_async(ticket_for)(alice)
    client = TerminalClient(alice.cookie, ticket)
    assert await client.open(cols=132, rows=43)
    await prompt(client)
    # tmux's status line takes one row of the terminal from the shell.
    await client.type("stty size\r")
    await client.read_until(b"42 132")
    await client.send_json({"type": "resize", "cols": 100, "rows": 30})
    await client.retype_until("stty size", b"29 100")
    await client.close()


@pytest.mark.parametrize(
    "ticket, code",
    [
        (None, 4401),
        ("not-a-ticket", 4401),
        ("forged", 4401),
        ("expired", 4401),
    ],
)
async def test_bad_tickets_close_with_4401(alice, ticket, code):
    if ticket == "forged":
        good = await sync_to_async(ticket_for)(alice)
        ticket = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    elif ticket == "expired":
        a_minute_ago = time.time() - access.TICKET_SECONDS - 1
        with mock.patch("django.core.signing.time.time", return_value=a_minute_ago):
            ticket = await sync_to_async(ticket_for)(alice)
    client = TerminalClient(alice.cookie, ticket)
    assert await client.open()
    assert await client.wait_closed() == code
    assert not client.output


@pytest.mark.both_databases
async def test_a_reused_ticket_closes_with_4401(alice):
    ticket = await sync_to_async(ticket_for)(alice)
    first = TerminalClient(alice.cookie, ticket)
    assert await first.open()
    await prompt(first)
    second = TerminalClient(alice.cookie, ticket)
    assert await second.open()
    assert await second.wait_closed() == 4401
    await first.close()


async def test_a_ticket_without_the_session_closes_with_4401(alice):
    ticket = await sync_to_async(ticket_for)(alice)
    client = TerminalClient("", ticket)
    assert await client.open()
    assert await client.wait_closed() == 4401


async def test_another_users_ticket_closes_with_4403(alice, make_user, session_cookie):
    bob = await sync_to_async(make_user)()
    bob.cookie = await sync_to_async(session_cookie)(bob)
    alices_ticket = await sync_to_async(ticket_for)(alice)
    client = TerminalClient(bob.cookie, alices_ticket)
    assert await client.open()
    assert await client.wait_closed() == 4403


async def test_a_workspace_that_is_not_theirs_closes_with_4403(alice, make_user):
    bob = await sync_to_async(make_user)()
    bobs = await sync_to_async(folders.create_workspace)(bob, "proj", "main")
    # A ticket naming bob's workspace, signed as if issued to alice.
    payload = {"u": alice.pk, "o": alice.pk, "w": bobs.pk, "n": "1" * 32}
    ticket = signing.dumps(payload, salt=access.SALT, compress=False)
    client = TerminalClient(alice.cookie, ticket)
    assert await client.open()
    assert await client.wait_closed() == 4403
    with pytest.raises(access.TicketRefused):
        await sync_to_async(access.issue)(alice, workspace=bobs)


async def test_a_foreign_origin_never_connects(alice):
    ticket = await sync_to_async(ticket_for)(alice)
    client = TerminalClient(alice.cookie, ticket, origin="http://evil.example")
    assert not await client.open()


async def test_malformed_control_frames_are_survived(alice):
    client = await opened(alice)
    await prompt(client)
    frames = [
        "{", "[]", '"x"', "{}", "null",
        '{"type": "resize", "cols": 0, "rows": 5}',
        '{"type": "resize", "cols": "80", "rows": 24}',
        '{"type": "resize", "cols": 5000, "rows": 5}',
        '{"type": "ack", "bytes": -5}', '{"type": "ack"}', '{"type": "nope"}',
    ]  # fmt: skip
    for frame in frames:
        await client.ws.send_to(text_data=frame)
    await client.send_json({"type": "ping"})
    await client.type("echo still-$((1+1))\r")
    await client.read_until(b"still-2")
    await client.close()


async def test_closing_leaves_no_exec_process_behind(alice):
    client = await opened(alice)
    await prompt(client)
    await client.type("sleep 777 &\r")
    await client.read_until(b"[1] ")  # bash's word that the job started
    await client.close()

    def only_the_tmux_server():
        processes = in_box(alice, "ps -eo pid,ppid,sid,args --no-headers")
        tmux = [line for line in processes.splitlines() if " tmux " in line]
        return len(tmux) == 1 and (processes, tmux)

    processes, tmux = await until_async(
        sync_to_async(only_the_tmux_server), "the tmux client stays", timeout=30
    )
    # Only the tmux server is left: a daemon in a session of its own, keeping
    # the shell (and its background job); the client that the exec ran is gone.
    assert len(tmux) == 1, processes
    pid, _, sid = tmux[0].split()[:3]
    assert pid == sid
    assert "sleep 777" in processes
    leases = Lease.objects.filter(box__user=alice)
    await until_async(sync_to_async(lambda: not leases.exists()), "the lease outlives it")


async def test_a_reattach_sees_earlier_output(alice):
    first = await opened(alice)
    await prompt(first)
    await first.type("echo marker-$((40+2))\r")
    await first.read_until(b"marker-42")
    await first.close()
    second = await opened(alice)
    await second.read_until(b"marker-42")
    await second.close()


async def test_a_one_megabyte_paste_arrives_intact(alice):
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\n"
    paste = line * (1024 * 1024 // len(line))
    client = await opened(alice)
    await prompt(client)
    await client.type("stty -echo; echo rea''dy-to-paste; cat > ~/paste.txt\r")
    await client.read_until(b"ready-to-paste")
    for start in range(0, len(paste), 256 * 1024):
        await client.type(paste[start : start + 256 * 1024])
    await client.type(b"\x04")
    await client.type("stty echo; sha256sum ~/paste.txt | cut -c1-16\r")
    await client.read_until(hashlib.sha256(paste).hexdigest()[:16].encode(), timeout=60)
    await client.close()


async def test_multibyte_text_split_at_chunk_edges_arrives_whole(alice):
    client = await opened(alice)
    await prompt(client)
    text = "é→😀中"  # 2, 3, 4 and 3 bytes
    encoded = text.encode()
    await client.type(b"printf '%s\\n' ")
    for i in range(len(encoded)):  # input split inside every character
        await client.type(encoded[i : i + 1])
    await client.type("\r")
    await client.read_until((text + "\r\n").encode())
    for _ in range(20):  # echoed as typed, then printed by printf
        if client.output.count((text + "\r\n").encode()) >= 2:
            break
        await client.read(timeout=0.5)
    assert client.output.count((text + "\r\n").encode()) >= 2
    # Output that reaches the browser in two pieces split inside a character:
    await client.type("printf '\\344\\270'; sleep 0.3; printf '\\255\\n'\r")
    await client.read_until("中\r\n".encode())
    await client.close()


@pytest.mark.both_databases
async def test_the_terminal_holds_a_lease_and_counts_activity(alice, settings):
    client = await opened(alice)
    await prompt(client)
    box = await sync_to_async(Box.objects.get)(user=alice)
    lease = await sync_to_async(Lease.objects.get)(box=box)
    assert lease.kind == Lease.Kind.TERMINAL and lease.is_live
    settings.SPOON_ACTIVITY_WRITE_SECONDS = 0
    await sync_to_async(Box.objects.filter(pk=box.pk).update)(
        last_activity_at=timezone.now() - timedelta(hours=1)
    )
    await client.type("echo active\r")
    await client.read_until(b"active\r\n")
    a_minute_ago = timezone.now() - timedelta(minutes=1)
    recently = Box.objects.filter(pk=box.pk, last_activity_at__gt=a_minute_ago)
    # Written beside the terminal, in a thread.
    await until_async(recently.aexists, "the terminal's activity was never written")
    await client.close()


async def test_a_flood_is_held_back_until_acked_and_ctrl_c_acts(alice):
    client = await opened(alice)
    await prompt(client)
    client.ack = False
    await client.type("yes flood-line\r")
    for _ in range(40):
        await client.read(timeout=0.2)
    held = len(client.output)
    for _ in range(10):
        await client.read(timeout=0.1)
    assert len(client.output) - held < 70_000, "reading stopped at the high watermark"
    assert len(client.output) < 300_000
    client.ack = True
    await client.send_json({"type": "ack", "bytes": len(client.output)})
    before = len(client.output)
    await client.type(b"\x03")
    await client.type("echo after-$((2+3))\r")
    await client.read_until(b"after-5")
    # The 200 ms target is bench/terminal's; here: it acts at once, not after
    # the flood `yes` made while nothing was acked (nine seconds of it).
    # Counted in bytes, not seconds (a busy machine is slow, not wrong): what
    # comes meanwhile is the window and what `yes` writes until the Ctrl-C
    # reaches it, 2 MB at most seen here with the suite's four processes.
    flushed = client.output.index(b"after-5", before) - before
    assert flushed < 20_000_000, f"{flushed} bytes came between Ctrl-C and the prompt"
    await client.close()


async def test_staff_with_the_permission_open_a_users_terminal(alice, make_user, session_cookie):
    def staff_with_permission():
        staff = make_user(is_staff=True)
        staff.user_permissions.add(Permission.objects.get(codename="open_user_terminal"))
        staff.cookie = session_cookie(staff)
        return staff

    staff = await sync_to_async(staff_with_permission)()
    client = await opened(staff, owner=alice, typing=True)  # typing is chosen, and recorded
    await prompt(client)
    await client.type("whoami\r")
    box = await sync_to_async(lifecycle.box_for)(alice)
    await client.read_until(f"{box.username}\r\n".encode())
    await client.close()

    plain_staff = await sync_to_async(make_user)(is_staff=True)
    with pytest.raises(access.TicketRefused):
        await sync_to_async(access.issue)(plain_staff, owner=alice)


async def test_workspace_terminal_opens_in_its_folder(alice):
    workspace = await sync_to_async(folders.create_workspace)(alice, "proj", "feature/a")
    client = await opened(alice, workspace=workspace)
    await prompt(client)
    await client.type("pwd\r")
    await client.read_until(b"/Code/proj/feature/a\r\n")
    await client.close()


def test_ticket_endpoint(client, make_user, settings):
    user = make_user()
    client.force_login(user)
    response = client.post("/terminal/tickets/")
    body = response.json()
    assert set(body) == {"ticket", "ws_url", "expires_in"}
    assert body["expires_in"] == 60
    assert body["ws_url"] == f"/ws/terminal/?ticket={body['ticket']}"
    assert client.get("/terminal/tickets/").status_code == 405

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post("/terminal/tickets/").status_code == 403, "CSRF-protected"

    other = make_user()
    theirs = Workspace.objects.create(user=other, spoon="p", branch="b")
    # Another user's workspace or box answers as a missing one (test_not_yours).
    assert client.post("/terminal/tickets/", {"workspace": theirs.pk}).status_code == 404
    assert client.post("/terminal/tickets/", {"owner": other.pk}).status_code == 404
    assert Client().post("/terminal/tickets/").status_code in (401, 403)


@pytest.mark.both_databases
def test_tickets_are_limited_per_user_and_minute(client, make_user, settings):
    settings.SPOON_TICKETS_PER_MINUTE = 5
    user, other = make_user(), make_user()
    client.force_login(user)
    answers = [client.post("/terminal/tickets/").status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]
    refused = client.post("/terminal/tickets/").json()
    assert (
        refused["error"]
        == "You asked for 5 tickets within a minute, as many as one may: wait a moment."
    )
    client.force_login(other)
    assert client.post("/terminal/tickets/").status_code == 200, "each user counts alone"
    reliability.limit(
        "WebSocket tickets", "`SPOON_TICKETS_PER_MINUTE` (60) per user",
        "429 and a sentence",
    )  # fmt: skip


async def test_secrets_are_in_the_terminals_environment(alice):
    from dotfiles.models import Secret

    def add_secret():
        secret = Secret(user=alice, name="MY_TERMINAL_TOKEN")
        secret.value = "tok-in-terminal-7"
        secret.save()

    await sync_to_async(add_secret)()
    client = await opened(alice)
    await prompt(client)
    await client.type("echo got-$MY_TERMINAL_TOKEN\r")
    # Not up to the line's end: a redraw (the status clock's minute) may put
    # an erase-line sequence between the text and its \r\n.
    await client.read_until(b"got-tok-in-terminal-7")
    await client.close()


async def test_secrets_changed_later_reach_new_tmux_windows(alice):
    from dotfiles.models import Secret

    first = await opened(alice)
    await prompt(first)
    await first.close()

    def add_secret():
        secret = Secret(user=alice, name="LATE_TOKEN")
        secret.value = "late-value-3"
        secret.save()

    await sync_to_async(add_secret)()
    # Every tmux command the attach runs, with its arguments, as the host's
    # process list shows them: ~/.local/bin comes first on the PATH.
    shim = 'printf "%s\\n" "$*" >> /tmp/tmux-argv; exec /usr/bin/tmux "$@"'
    await sync_to_async(in_box)(
        alice,
        f"mkdir -p ~/.local/bin && echo '{shim}' > ~/.local/bin/tmux && chmod +x ~/.local/bin/tmux",
    )
    client = await opened(alice)  # the tmux server from before keeps running
    await prompt(client)
    await client.type("tmux new-window; sleep 0.5; tmux send-keys 'echo got-$LATE_TOKEN' Enter\r")
    await client.read_until(b"got-late-value-3")
    await client.close()
    commands = await sync_to_async(in_box)(alice, "cat /tmp/tmux-argv")
    assert "source-file -" in commands and "attach-session" in commands
    assert "late-value-3" not in commands, "a secret's value on a command line"


async def test_each_tab_keeps_its_own_size_and_a_reload_finds_its_shell(alice):
    async def tab(name, cols, rows):
        ticket = await sync_to_async(ticket_for)(alice)
        client = TerminalClient(alice.cookie, ticket, tab=name)
        assert await client.open(cols=cols, rows=rows)
        await prompt(client)
        return client

    wide = await tab("wide1", 150, 40)
    await wide.type("echo i-am-wide; stty size\r")
    await wide.read_until(b"39 150")
    narrow = await tab("narrow1", 70, 20)
    await narrow.type("stty size\r")
    await narrow.read_until(b"19 70")
    await wide.type("stty size\r")
    before = wide.output.count(b"39 150")
    for _ in range(20):
        if wide.output.count(b"39 150") > before:
            break
        await wide.read(timeout=0.5)
    assert wide.output.count(b"39 150") > before, "the second tab did not resize the first"
    await narrow.type("tmux list-windows -F '#{@spoon-tab}' | sort | tr '\\n' ,; echo\r")
    await narrow.read_until(b"narrow1,wide1,")
    await wide.close()
    again = await tab("wide1", 150, 40)
    await again.read_until(b"i-am-wide")  # a reload finds its own shell
    await again.close()
    await narrow.close()
