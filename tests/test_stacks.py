"""Stack images (images/stacks) and custom ones (`manage.py buildimage`):
built on the job image by a real engine, registered, and used by boxes."""

import asyncio
import html
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from boxes import commands, docker_engine, lifecycle, stacks
from boxes.models import RegisteredImage
from workspaces import runs
from workspaces.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def stack_refs(engine):
    """The stacks, built once per run (skipped while up to date)."""
    return {name: ref for name, ref, _ in stacks.build_stacks(log=lambda line: None)}


@pytest.fixture
def registered(stack_refs):
    return {image.name: image for image in stacks.ensure_stacks(log=lambda line: None)}


@pytest.fixture
def custom_name():
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    docker_engine.remove_image(f"{stacks.CUSTOM_REPOSITORY}:{name}")


def test_the_stacks_build_on_the_job_image_and_are_registered(registered, settings):
    assert set(registered) == {"node", "python", "chromium"}
    job_id = docker_engine.image_id(settings.SPOON_JOB_IMAGE)
    for image in registered.values():
        assert image.offered and image.description and image.built_from == settings.SPOON_JOB_IMAGE
        assert docker_engine.image_labels(image.ref)["spoon.base-id"] == job_id
    log = []
    stacks.ensure_stacks(log=log.append)
    assert all(line.endswith("up to date") for line in log), "nothing rebuilt while current"
    assert RegisteredImage.objects.count() == 3, "registered once"


def test_an_operators_edits_to_a_stack_registration_are_kept(registered):
    RegisteredImage.objects.filter(name="chromium").update(name="browser", offered=False)
    stacks.ensure_stacks(log=lambda line: None)
    kept = RegisteredImage.objects.get(ref=registered["chromium"].ref)
    assert (kept.name, kept.offered) == ("browser", False)


STACK_CHECKS = {
    "node": "node --version && npm --version && yarn --version && tsc --version",
    "python": "python --version && python3 -m venv /tmp/v && /tmp/v/bin/pip --version "
    "&& pipx --version && python3-config --includes",
    "chromium": "chromium --headless --disable-gpu --dump-dom 'data:text/html,<p id=p></p>"
    '<script>document.getElementById("p").textContent = "rendered-" + 6*7</script>\' '
    "2>/dev/null",
}


@pytest.mark.parametrize("stack", sorted(STACK_CHECKS))
def test_each_stack_has_its_tools_in_a_box(stack, stack_refs, make_user):
    box = lifecycle.ensure_box(make_user(), image=stack_refs[stack])
    result = commands.run(box, ["bash", "-c", STACK_CHECKS[stack]], timeout=120)
    assert result.ok, result.output.decode(errors="replace")
    if stack == "chromium":
        assert b'<p id="p">rendered-42</p>' in result.output, "a page, its script run headless"


def test_buildimage_adds_packages_to_a_registered_image(registered, custom_name, make_user):
    call_command("buildimage", custom_name, "--from", "node", "--packages", "tree, cowsay")
    image = RegisteredImage.objects.get(name=custom_name)
    assert image.ref == f"spoon-custom:{custom_name}" and image.offered
    assert image.packages == ["tree", "cowsay"] and image.built_from == registered["node"].ref
    box = lifecycle.ensure_box(make_user(), image=image.ref)
    both = commands.run(box, ["sh", "-c", "tree --version && /usr/games/cowsay hi && node -v"])
    assert both.ok, both.output.decode(errors="replace")

    call_command("buildimage", custom_name, "--packages", "jq")
    again = RegisteredImage.objects.get(name=custom_name)
    assert again.pk == image.pk and again.packages == ["jq"], "built again under its name"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--packages", "Bad_Name"], "Not Debian package names"),
        (["--packages", "tree;rm"], "Not Debian package names"),
        (["--from", "nothing-here", "--packages", "tree"], "No registered image 'nothing-here'"),
    ],
)
def test_buildimage_refuses_bad_input_before_building(args, message, custom_name, registered):
    with pytest.raises(CommandError, match=message):
        call_command("buildimage", custom_name, *args)
    assert docker_engine.image_id(f"spoon-custom:{custom_name}") is None


def test_buildimage_refuses_a_bad_name_and_a_taken_one(registered):
    with pytest.raises(CommandError, match="Image name 'No Good'"):
        call_command("buildimage", "No Good", "--packages", "tree")
    with pytest.raises(CommandError, match="registered for spoon-stack:node"):
        call_command("buildimage", "node", "--packages", "tree")


def test_a_package_apt_does_not_know_fails_clearly_and_registers_nothing(registered, custom_name):
    with pytest.raises(CommandError) as failed:
        call_command("buildimage", custom_name, "--packages", "spoon-no-such-package")
    assert "Unable to locate package spoon-no-such-package" in str(failed.value)
    assert not RegisteredImage.objects.filter(name=custom_name).exists()


def test_buildimage_from_an_image_not_built_on_the_job_image(registered, custom_name, settings):
    RegisteredImage.objects.create(name="plain-base", ref=settings.SPOON_BASE_IMAGE)
    with pytest.raises(CommandError, match="is not built on the job image"):
        call_command("buildimage", custom_name, "--from", "plain-base", "--packages", "tree")


def test_buildimage_with_the_engine_down(custom_name):
    with override_settings(DOCKER_HOST="unix:///nonexistent/docker.sock"):
        with pytest.raises(CommandError, match="does not answer"):
            call_command("buildimage", custom_name, "--packages", "tree")


def test_a_workspace_runs_on_the_image_its_user_picked(registered, make_user, wait_for_run):
    user = make_user()
    client = Client()
    client.force_login(user)
    made = client.post("/workspaces/", {"spoon": "py", "branch": "main", "image": "python"})
    assert made.status_code == 302
    workspace = user.workspaces.get()
    assert workspace.image == registered["python"]
    run = wait_for_run(runs.start_run(workspace, ["python", "--version"]))
    assert run.status == Run.Status.SUCCEEDED and "Python 3" in run.output
    assert run.image == registered["python"].ref

    page = client.get(f"/workspaces/{workspace.pk}/").content.decode()
    assert '<option value="python" selected>' in page and 'value="node"' in page
    client.post(f"/workspaces/{workspace.pk}/image", {"image": "node"})
    workspace.refresh_from_db()
    assert workspace.image == registered["node"]


def test_users_pick_only_offered_images(registered, make_user, settings, wait_for_run):
    RegisteredImage.objects.filter(name="chromium").update(offered=False)
    RegisteredImage.objects.create(name="job", ref=settings.SPOON_JOB_IMAGE, offered=False)
    user = make_user()
    client = Client()
    client.force_login(user)
    page = client.get("/workspaces/").content.decode()
    assert 'value="python"' in page and 'value="chromium"' not in page
    refused = client.post("/workspaces/", {"spoon": "x", "branch": "main", "image": "chromium"})
    assert refused.status_code == 400
    assert "No image 'chromium' is offered" in html.unescape(refused.content.decode())
    assert not user.workspaces.exists()

    client.post("/workspaces/", {"spoon": "x", "branch": "main"})
    workspace = user.workspaces.get()
    client.post(f"/workspaces/{workspace.pk}/image", {"image": "job"})
    workspace.refresh_from_db()
    assert workspace.image is None, "a tampered form cannot pick an image that is not offered"

    url = f"/api/workspaces/{workspace.pk}/runs/"
    answer = client.post(url, {"argv": ["true"], "image": "job"}, content_type="application/json")
    assert answer.status_code == 400 and answer.json()["field"] == "image"
    answer = client.post(
        url, {"argv": ["node", "-v"], "image": "node"}, content_type="application/json"
    )
    assert answer.status_code == 201 and answer.json()["image"] == registered["node"].ref
    assert wait_for_run(Run.objects.get(pk=answer.json()["id"])).status == Run.Status.SUCCEEDED


def test_operators_register_images_in_the_admin(registered, make_user, settings):
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    page = client.get("/admin/boxes/registeredimage/").content.decode()
    assert page.count('<td class="field-engine_presence">present</td>') == 3
    added = client.post(
        "/admin/boxes/registeredimage/add/",
        {
            "name": "later",
            "ref": "127.0.0.1:5000/team/tool:2",
            "description": "",
            "offered": "on",
            "packages": "[]",
        },  # fmt: skip
        follow=True,
    )
    assert "is not in the engine yet" in added.content.decode()
    page = client.get("/admin/boxes/registeredimage/").content.decode()
    assert '<td class="field-engine_presence">missing</td>' in page
    bad = client.post(
        "/admin/boxes/registeredimage/add/",
        {"name": "Bad Name", "ref": "not a ref!", "packages": "[]"},
    )
    text = html.unescape(bad.content.decode())
    assert bad.status_code == 200 and "is not an image reference" in text and "Image name" in text


def test_a_terminal_says_when_its_box_stays_on_another_image(registered, make_user, session_cookie):
    from asgiref.sync import async_to_sync

    from boxes import leases
    from boxes.models import Lease
    from tests.terminal_client import TerminalClient
    from workspaces import access, folders

    user = make_user()
    workspace = folders.create_workspace(user, "s", "main", image=registered["python"])
    held = leases.acquire(lifecycle.box_for(user), Lease.Kind.RUN, "a run elsewhere")
    folders.set_workspace_image(workspace, registered["node"])
    cookie = session_cookie(user)

    async def open_terminal():
        terminal = TerminalClient(
            cookie, await asyncio.to_thread(access.issue, user, None, workspace)
        )
        assert await terminal.open()
        await terminal.read_until(b"$ ")
        await terminal.close()
        return terminal

    terminal = async_to_sync(open_terminal)()
    (detail,) = [
        d for s, d in zip(terminal.statuses, terminal.details, strict=True) if s == "connected"
    ]
    assert "still runs spoon-stack:python" in detail
    leases.release(held)


def test_a_run_never_runs_on_another_image_than_its_workspaces(registered, make_user, wait_for_run):
    from boxes import leases
    from boxes.models import Lease
    from workspaces import folders

    user = make_user()
    workspace = folders.create_workspace(user, "s", "main")
    held = leases.acquire(lifecycle.box_for(user), Lease.Kind.TERMINAL, "a terminal elsewhere")
    folders.set_workspace_image(workspace, registered["python"])
    run = wait_for_run(runs.start_run(workspace, ["python", "--version"]))
    assert run.status == Run.Status.FAILED
    assert "runs another image and is in use" in run.error and "spoon-stack:python" in run.error
    leases.release(held)
    run = wait_for_run(runs.start_run(workspace, ["python", "--version"]))
    assert run.status == Run.Status.SUCCEEDED, "once nothing else holds the box, it moves"


def test_an_image_a_workspace_uses_cannot_be_deleted(registered, make_user):
    from workspaces import folders

    workspace = folders.create_workspace(make_user(), "s", "main", image=registered["node"])
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    url = f"/admin/boxes/registeredimage/{registered['node'].pk}/delete/"
    page = html.unescape(client.post(url, {"post": "yes"}).content.decode())
    assert "would require deleting the following protected related objects" in page
    workspace.refresh_from_db()
    assert workspace.image == registered["node"]


@pytest.mark.browser
def test_a_workspace_made_on_a_picked_image_in_the_browser_runs_there(
    stack_refs, spoon_server, page, new_user_logged_in
):
    from tests.support import manage

    manage("buildimages", env=spoon_server.env)  # registers the (current) stacks there
    new_user_logged_in(page, spoon_server, "/workspaces/")
    page.fill("#spoon", "py")
    page.fill("#branch", "main")
    page.select_option("#image", "python")
    page.click("text=Make workspace")
    page.wait_for_url("**/workspaces/*/", timeout=60_000)
    assert page.locator("#image").input_value() == "python"
    page.fill("#command", "python --version")
    page.click("[data-run-form] button[type=submit]")
    page.wait_for_selector("[data-run-title][data-status=succeeded]", timeout=60_000)
    assert "Python 3." in page.locator("[data-run-output]").inner_text()
    page.goto(f"{spoon_server.url}/workspaces/")
    assert page.locator(".badge", has_text="python").count() == 1
