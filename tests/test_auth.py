"""Logging in and out, and what the layout shows to whom."""

import base64
import io
import re
import urllib.request

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.http import HttpRequest
from django.test import Client

from tests import reliability


@pytest.fixture
def ada(db):
    return get_user_model().objects.create_user("ada", password="correct-horse-battery")


@pytest.mark.django_db
def test_pages_need_login(client):
    for url in ("/", "/terminal/", "/settings/dotfiles/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_login_and_logout(client, ada, engine):
    page = client.get("/login/")
    assert page.status_code == 200 and b'name="password"' in page.content

    wrong = client.post("/login/", {"username": "ada", "password": "nope"})
    assert wrong.status_code == 200
    assert b"didn't match" in wrong.content

    right = client.post("/login/", {"username": "ada", "password": "correct-horse-battery"})
    assert right.status_code == 302 and right["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert b"Terminal" in home.content and b"Dotfiles" in home.content
    assert b"/admin/" not in home.content, "Admin is for staff only"

    confirm = client.get("/logout/")
    assert confirm.status_code == 200 and b"Log out?" in confirm.content
    assert client.get("/").status_code == 200, "a GET asks and logs nobody out"
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_staff_see_admin_link_and_reach_admin(client, engine):
    get_user_model().objects.create_superuser("root-user", password="correct-horse-battery")
    client.login(request=HttpRequest(), username="root-user", password="correct-horse-battery")
    assert b'href="/admin/"' in client.get("/").content
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_first_user_is_made_once_and_its_password_shown_once(client):
    out = io.StringIO()
    call_command("firstuser", stdout=out)
    username, password = re.search(r"First user: (\S+)  password: (\S+)", out.getvalue()).groups()
    assert client.login(request=HttpRequest(), username=username, password=password)
    assert get_user_model().objects.get(username=username).is_superuser

    again = io.StringIO()
    call_command("firstuser", stdout=again)
    assert "no first user made" in again.getvalue()
    assert password not in again.getvalue()
    assert get_user_model().objects.count() == 1


def test_static_files_are_served_by_daphne(spoon_server):
    with urllib.request.urlopen(spoon_server.url + "/static/spoon.css") as response:
        assert response.status == 200
        assert b"--accent" in response.read()


@pytest.mark.browser
def test_login_in_chromium_over_daphne(spoon_server, page):
    page.goto(spoon_server.url + "/terminal/")
    assert "/login/" in page.url
    page.fill("#id_username", spoon_server.staff)
    page.fill("#id_password", "wrong-password")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text().startswith("Your user name and password")

    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(spoon_server.url + "/terminal/")
    nav = page.locator("nav[aria-label=Main]")
    assert nav.get_by_role("link", name="Admin").is_visible(), "ada is staff"
    assert nav.locator("[aria-current=page]").inner_text() == "Terminal"

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login/")


@pytest.mark.browser
def test_layout_fits_a_phone(spoon_server, browser):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(spoon_server.url + "/login/")
        page.fill("#id_username", spoon_server.member)
        page.fill("#id_password", "another-long-password")
        page.click("button[type=submit]")
        page.wait_for_url(spoon_server.url + "/")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, "no sideways scrolling on a phone"
        assert page.get_by_role("link", name="Dotfiles").is_visible()
        assert page.get_by_role("link", name="Admin").count() == 0, "bob is not staff"
    finally:
        context.close()


def test_production_serves_hashed_static_files(engine, tmp_path):
    from tests.support import SpoonServer, manage

    server = SpoonServer(
        tmp_path,
        SPOON_PRODUCTION="true",
        SPOON_SSL_REDIRECT="false",
        SECRET_KEY="test-only-production-key-4f0d7c2b9e8a1f3d5c7b9a0e2d4f6a8c1e3b5d7f",
        SPOON_ENCRYPTION_KEYS=base64.b64encode(bytes(range(32))).decode(),
    )
    manage("collectstatic", "--noinput", "-v", "0", env=server.env)
    server.start()
    try:
        login = urllib.request.urlopen(server.url + "/login/").read().decode()
        css = re.search(r'href="(/static/spoon\.[0-9a-f]{12}\.css)"', login).group(1)
        with urllib.request.urlopen(server.url + css) as response:
            assert response.status == 200
            assert "max-age=315360000" in response.headers["Cache-Control"]
    finally:
        server.stop()


@pytest.mark.both_databases
@pytest.mark.django_db
def test_repeated_failed_logins_are_refused_for_a_while(settings):
    """By account (from any address) and by address (for any account); the
    admin's login too; a right password meanwhile is refused as well."""
    get_user_model().objects.create_user("target", password="correct-horse-battery")
    client = Client()

    def log_in(username, password, address="10.0.0.1", path="/login/"):
        form = {"username": username, "password": password}
        return client.post(path, form, REMOTE_ADDR=address)

    answers = [log_in("target", f"wrong-{n}", f"10.0.1.{n}").status_code for n in range(10)]
    assert answers == [200] * 9 + [429], "the form again with its error, then the lockout"
    refused = log_in("target", "correct-horse-battery", "10.0.2.1")
    assert refused.status_code == 429
    assert b"Too many failed logins" in refused.content and b"15 minutes" in refused.content
    assert log_in("someone-else", "wrong", "10.0.2.1").status_code == 200, "others log in"

    for n in range(10):
        log_in(f"nobody-{n}", "wrong", "10.0.3.3", "/admin/login/")  # the admin's login
    assert log_in("target-2", "whatever", "10.0.3.3").status_code == 429, "the address"
    assert log_in("target-2", "whatever", "10.0.3.4").status_code == 200
    reliability.limit(
        "failed logins", "`SPOON_LOGIN_FAILURE_LIMIT` (10) per account or address",
        "429 and a sentence for `SPOON_LOGIN_LOCKOUT_MINUTES` (15)",
    )  # fmt: skip
