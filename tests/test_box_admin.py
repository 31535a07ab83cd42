"""Operators see boxes as the engine has them and act on them from the admin."""

import pytest
from django.test import override_settings

from boxes import docker_engine, leases, lifecycle
from boxes.models import Box, Lease

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator(client, make_user):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def boxes(engine, make_user):
    running = lifecycle.ensure_box(make_user())
    stopped = lifecycle.ensure_box(make_user())
    lifecycle.stop_box(stopped)
    missing = lifecycle.ensure_box(make_user())
    docker_engine.remove_container(missing.container_name)
    leases.acquire(running, Lease.Kind.TERMINAL, "admin test")
    return {"running": running, "stopped": stopped, "missing": missing}


def row(html: str, name: str) -> str:
    start = html.index(name)
    return html[start : html.index("</tr>", start)]


def test_changelist_shows_live_state_and_leases(operator, boxes):
    page = operator.get("/admin/boxes/box/").content.decode()
    for state, box in boxes.items():
        assert f'<td class="field-engine_state">{state}</td>' in row(page, box.container_name)
    held = '<td class="field-held_by"><span title="admin test">terminal</span></td>'
    assert held in row(page, boxes["running"].container_name)


def test_filter_by_state(operator, boxes):
    page = operator.get("/admin/boxes/box/?state=missing").content.decode()
    assert boxes["missing"].container_name in page
    assert boxes["running"].container_name not in page


def test_engine_fields_are_read_only(operator, boxes):
    box = boxes["running"]
    page = operator.get(f"/admin/boxes/box/{box.pk}/change/").content.decode()
    assert 'name="image"' in page, "the user's image may be chosen"
    for field in ("state", "container_id", "running_image", "username"):
        assert f'name="{field}"' not in page


def act(client, action, boxes):
    return client.post(
        "/admin/boxes/box/",
        {"action": action, "_selected_action": [b.pk for b in boxes]},
        follow=True,
    )


def test_stop_restart_and_recreate_actions(operator, boxes):
    box = boxes["running"]
    act(operator, "stop_boxes", [box])
    assert docker_engine.container_state(box.container_name) is None
    assert docker_engine.volume_exists(box.volume_name)

    act(operator, "restart_boxes", [box])
    first = docker_engine.container_state(box.container_name)
    assert first.running

    response = act(operator, "recreate_boxes", [box])
    assert f"Recreated {box.container_name}." in response.content.decode()
    second = docker_engine.container_state(box.container_name)
    assert second.running and second.id != first.id


def test_reap_now_action(operator, boxes):
    Box.objects.update(last_activity_at="2000-01-01T00:00:00Z")
    Lease.objects.all().delete()
    response = act(operator, "reap_now", [boxes["running"]]).content.decode().lower()
    assert f"stopped {boxes['running'].container_name}" in response
    assert f"marked {boxes['missing'].container_name} stopped" in response


def test_pages_survive_an_engine_that_is_down(operator, boxes):
    with override_settings(DOCKER_HOST="unix:///nonexistent/docker.sock"):
        page = operator.get("/admin/boxes/box/")
        assert page.status_code == 200
        assert "engine unreachable" in page.content.decode()
        response = act(operator, "stop_boxes", [boxes["running"]]).content.decode()
        assert "does not answer" in response


def test_leases_and_workspaces_are_visible(operator, boxes):
    assert "admin test" in operator.get("/admin/boxes/lease/").content.decode()
    assert operator.get("/admin/workspaces/workspace/").status_code == 200


def test_only_staff_reach_the_admin(client, make_user):
    client.force_login(make_user())
    assert client.get("/admin/boxes/box/").status_code == 302


def test_staff_with_the_permission_get_a_terminal_link(client, boxes, make_user):
    from django.contrib.auth.models import Permission

    box = boxes["running"]
    plain = make_user(is_staff=True)
    plain.user_permissions.add(Permission.objects.get(codename="view_box"))
    client.force_login(plain)
    assert (
        f'href="/terminal/user/{box.user_id}/"'
        not in client.get("/admin/boxes/box/").content.decode()
    )
    assert client.get(f"/terminal/user/{box.user_id}/").status_code == 404

    opener = make_user(is_staff=True)
    opener.user_permissions.add(
        Permission.objects.get(codename="view_box"),
        Permission.objects.get(codename="open_user_terminal"),
    )
    client.force_login(opener)
    page = client.get("/admin/boxes/box/").content.decode()
    assert f'href="/terminal/user/{box.user_id}/"' in page
    terminal = client.get(f"/terminal/user/{box.user_id}/").content.decode()
    assert f'data-owner="{box.user_id}"' in terminal
