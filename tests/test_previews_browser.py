"""Previews in Debian's chromium: Spoon at http://localhost:<port>, previews
at http://<port>--<box>.localhost:<port> (chromium sends every *.localhost to
loopback). The ports list opens a preview, its page's WebSocket reaches the
box, its script can neither see cookies nor use Spoon's API, and a server
address printed in the terminal opens the preview."""

import time
import uuid

import pytest

from boxes import docker_engine
from tests.previews_support import run_app, run_vite
from tests.support import wait_connected, wait_for_screen

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("previews_browser")]
# Its tests drive a daphne and never use the database in this process.
SHARES_A_BROWSER = True
PASSWORD = "a-long-test-password"


def log_in(page, server, landing: str) -> str:
    """A new user, logged in at localhost (previews send visitors there to sign in)."""
    username = f"u{uuid.uuid4().hex[:8]}"
    server.create_user(username, PASSWORD)
    spoon = f"http://localhost:{server.port}"
    page.goto(f"{spoon}/login/?next={landing}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{spoon}{landing}")
    return username


@pytest.mark.slow
def test_a_preview_opens_from_the_ports_list_and_its_page_cannot_reach_spoon(spoon_server, browser):
    context = browser.new_context()
    page = context.new_page()
    username = log_in(page, spoon_server, "/terminal/")
    wait_connected(page)
    run_app(username, 8080)
    spoon = f"http://localhost:{spoon_server.port}"
    preview = f"http://8080--{username}.localhost:{spoon_server.port}"

    page.goto(f"{spoon}/workspaces/")  # a workspace's page lists the box's ports too
    page.fill("#spoon", "ports")
    page.fill("#branch", "main")
    page.click("text=Make workspace")
    page.wait_for_url("**/workspaces/*/", timeout=60_000)
    page.wait_for_selector("[data-ports-rows] tr[data-port='8080']:has-text('python3')")

    page.goto(f"{spoon}/")
    page.wait_for_selector("[data-ports-rows] tr[data-port='8080']:has-text('python3')")
    with context.expect_page() as opened:
        page.click("tr[data-port='8080'] a:has-text('Open')")
    app = opened.value
    app.wait_for_selector("#echo:has-text('echo: hello over the preview')", timeout=30_000)
    assert app.url == f"{preview}/", "signed in through Spoon and back"
    assert app.inner_text("#cookies") == "cookies: []", "no cookie of Spoon's, ours HttpOnly"

    reading = app.evaluate(
        """url => fetch(url, {credentials: "include"}).then(() => "read", e => "refused: " + e)""",
        f"{spoon}/api/dotfiles/config",
    )
    assert reading.startswith("refused"), "another origin cannot read Spoon's answers"
    app.evaluate(
        """url => fetch(url, {method: "POST", credentials: "include", mode: "no-cors",
                              body: '{"path": ".planted", "content": "x"}'})""",
        f"{spoon}/api/dotfiles/files/",
    )
    files = page.evaluate("fetch('/api/dotfiles/files/').then(r => r.json())")
    assert files == {"files": []}, "nor act with the user's session"

    page.goto(f"{spoon}/terminal/")
    wait_connected(page)
    wait_for_screen(page, "$ ")
    page.locator(".xterm").click()
    page.keyboard.type("clear; echo serving at http://0.0.0.0:8080/headers now\n")
    wait_for_screen(page, "serving at http://0.0.0.0:8080/headers now")
    row = page.locator(".xterm-rows > div", has_text="serving at").last
    char = page.evaluate(
        "(() => { const m = document.querySelector('.xterm-char-measure-element');"
        " return m.getBoundingClientRect().width / m.textContent.length; })()"
    )
    box = row.bounding_box()
    x, y = box["x"] + (len("serving at ") + 8) * char, box["y"] + box["height"] / 2
    page.mouse.move(x - 3, y)
    page.mouse.move(x, y)
    page.wait_for_selector(".xterm-screen.xterm-cursor-pointer")
    with context.expect_page() as opened:
        page.mouse.click(x, y)
    linked = opened.value
    linked.wait_for_load_state()
    assert linked.url == f"{preview}/headers", "the box's address became its preview's"
    assert '"path": "/headers"' in linked.content()

    other = browser.new_context().new_page()
    log_in(other, spoon_server, "/")
    other.goto(f"{preview}/")
    assert "No preview here" in other.content(), "another user's private port"
    context.close()


def test_a_vite_dev_servers_hot_reload_works_through_its_preview(spoon_server, page):
    """A real Vite: its page loads through the preview, its client's WebSocket
    (subprotocol vite-hmr) reaches the box, and a stylesheet edited in the box
    reaches the page without a reload."""
    username = log_in(page, spoon_server, "/terminal/")
    wait_connected(page)  # the box runs
    port = run_vite(username)
    said = []
    page.on("console", lambda message: said.append(message.text))
    page.goto(f"http://{port}--{username}.localhost:{spoon_server.port}/")
    page.wait_for_selector("#loaded:has-text('loaded ')")
    page.wait_for_function("() => document.title === 'vite app'")
    loaded = page.inner_text("#loaded")
    color = "() => getComputedStyle(document.getElementById('message')).color"
    assert page.evaluate(color) == "rgb(200, 0, 0)"
    wait_said(page, said, "[vite] connected.")

    docker_engine.exec_run(
        f"spoon-box-{username}",
        ["sed", "-i", "s/200, 0, 0/0, 0, 200/", "/tmp/vite/app/style.css"],
        user="1000",
    )
    page.wait_for_function(f"() => ({color})() === 'rgb(0, 0, 200)'", timeout=15_000)
    assert page.inner_text("#loaded") == loaded, "updated in place: the page did not reload"
    wait_said(page, said, "[vite] hot updated: /style.css")


def wait_said(page, said: list[str], text: str) -> None:
    deadline = time.monotonic() + 60
    while not any(text in line for line in said):
        assert time.monotonic() < deadline, f"the page never said {text!r}: {said}"
        page.wait_for_timeout(100)  # lets Playwright hand over the page's messages
