"""Staff access is visible and recorded: staff watch a user's terminal
read-only unless they choose to type, the user's terminals say so while it
lasts, and admin changes to what runs in a box are recorded and shown."""

import time

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission
from django.test import Client

from boxes import lifecycle
from boxes.models import RegisteredImage, StaffAction
from tests.terminal_client import TerminalClient
from workspaces import access
from workspaces.models import Agent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice(engine, make_user, session_cookie):
    user = make_user()
    user.cookie = session_cookie(user)
    return user


@pytest.fixture
def staff(make_user, session_cookie):
    user = make_user(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="open_user_terminal"))
    user.cookie = session_cookie(user)
    return user


async def opened(user, **ticket) -> TerminalClient:
    client = TerminalClient(user.cookie, await sync_to_async(access.issue)(user, **ticket))
    assert await client.open()
    await client.read_until(b"$ ")
    return client


async def until(client, predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        await client.read(timeout=0.5)
    assert predicate(), (client.statuses, client.details)


@pytest.mark.slow
async def test_staff_watch_read_only_and_the_user_sees_it_while_it_lasts(alice, staff):
    mine = await opened(alice)
    watching = await opened(staff, owner=alice)
    assert any("read-only" in detail for detail in watching.details)
    await watching.type("echo typed-by-staff\r")
    await mine.type("echo typed-by-owner\r")
    await mine.read_until(b"typed-by-owner\r\n")
    await mine.type("echo and-again-$((1+1))\r")  # a second round trip, after the watcher's keys
    await mine.read_until(b"and-again-2\r\n")
    assert b"typed-by-staff" not in mine.output, "a watcher's keys reach nothing"

    notice = f"Staff ({staff.username}) have this terminal open, read-only."
    await until(mine, lambda: notice in mine.details[-1])
    await watching.close()
    await until(mine, lambda: mine.details[-1] == "" and mine.statuses[-1] == "connected")

    (record,) = await sync_to_async(list)(StaffAction.objects.all())
    assert (record.staff_id, record.owner_id, record.what) == (staff.pk, alice.pk, "terminal")
    assert not record.typing and record.ended_at is not None
    await mine.close()


async def test_staff_who_choose_to_type_can_and_it_is_recorded(alice, staff):
    mine = await opened(alice)
    typing = await opened(staff, owner=alice, typing=True)
    await typing.type("echo typed-by-staff-$((40+2))\r")
    await mine.read_until(b"typed-by-staff-42")
    await until(mine, lambda: "can type" in mine.details[-1])
    await typing.close()
    record = await StaffAction.objects.aget(owner=alice)
    assert record.typing and record.detail == "could type"
    await mine.close()


def test_a_box_image_is_a_registered_one_and_a_change_is_shown_to_its_user(
    engine, make_user, settings
):
    operator = Client()
    operator.force_login(make_user(is_staff=True, is_superuser=True))
    owner = make_user()
    box = lifecycle.box_for(owner)
    url = f"/admin/boxes/box/{box.pk}/change/"
    inline = {"leases-TOTAL_FORMS": "0", "leases-INITIAL_FORMS": "0"}
    refused = operator.post(url, {"image": "evil/miner:latest", **inline})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    box.refresh_from_db()
    assert box.image == "" and not StaffAction.objects.exists()

    RegisteredImage.objects.create(name="base", ref=settings.SPOON_BASE_IMAGE)
    assert operator.post(url, {"image": settings.SPOON_BASE_IMAGE, **inline}).status_code == 302
    box.refresh_from_db()
    assert box.image == settings.SPOON_BASE_IMAGE
    record = StaffAction.objects.get(owner=owner)
    assert record.what == "box image" and settings.SPOON_BASE_IMAGE in record.detail

    user = Client()
    user.force_login(owner)
    home = user.get("/").content.decode()
    assert "set the box&#x27;s image" in home and settings.SPOON_BASE_IMAGE in home


def test_an_agent_change_is_recorded_and_shown_to_everyone(make_user):
    operator = Client()
    operator.force_login(make_user(is_staff=True, is_superuser=True))
    agent = Agent.objects.create(name="helper", argv=["helper", "{prompt}"])
    answer = operator.post(
        f"/admin/workspaces/agent/{agent.pk}/change/",
        {"name": "helper", "argv": '["curl", "{prompt}"]', "image": "", "secrets": "[]",
         "login_file": ""},
    )  # fmt: skip
    assert answer.status_code == 302, answer.content.decode()[:2000]
    record = StaffAction.objects.get(what="agent")
    assert record.owner is None and "'curl'" in record.detail
    anyone = Client()
    anyone.force_login(make_user())
    assert "changed the agent helper" in anyone.get("/").content.decode()


def test_the_record_cannot_be_edited_or_erased_in_the_admin(make_user):
    operator = Client()
    operator.force_login(make_user(is_staff=True, is_superuser=True))
    record = StaffAction.objects.create(staff_name="x", what="terminal")
    assert operator.get("/admin/boxes/staffaction/").status_code == 200
    assert operator.get("/admin/boxes/staffaction/add/").status_code == 403
    operator.post(f"/admin/boxes/staffaction/{record.pk}/delete/", {"post": "yes"})
    assert StaffAction.objects.filter(pk=record.pk).exists()


def test_a_registered_images_ref_and_a_workspaces_choices_changed_by_staff_are_recorded(
    make_user,
):
    from workspaces.models import Workspace

    operator = Client()
    operator.force_login(make_user(is_staff=True, is_superuser=True))
    image = RegisteredImage.objects.create(name="tools", ref="team/tools:1")
    answer = operator.post(
        f"/admin/boxes/registeredimage/{image.pk}/change/",
        {"name": "tools", "ref": "team/tools:2", "description": "", "offered": "on"},
    )
    assert answer.status_code == 302, answer.content.decode()[:1500]
    record = StaffAction.objects.get(what="image")
    assert record.owner is None and "team/tools:1 -> team/tools:2" in record.detail

    owner = make_user()
    workspace = Workspace.objects.create(user=owner, spoon="s", branch="main")
    answer = operator.post(
        f"/admin/workspaces/workspace/{workspace.pk}/change/", {"image": image.pk, "agent": ""}
    )
    assert answer.status_code == 302, answer.content.decode()[:1500]
    record = StaffAction.objects.get(what="workspace")
    assert record.owner == owner and "image default -> tools" in record.detail
    mine = Client()
    mine.force_login(owner)
    home = mine.get("/").content.decode()
    assert "changed a workspace" in home and "changed a registered image" in home
