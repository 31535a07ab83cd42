"""The terminal page in Debian's chromium, against daphne and a real box."""

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.support import SCREEN_TEXT, wait_connected, wait_for_screen

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("terminal_browser")]
# Its tests drive a daphne and never use the database in this process.
SHARES_A_BROWSER = True


def test_type_a_command_then_reload_into_the_same_session(
    spoon_server, page, tmp_path, new_user_logged_in
):
    issued = []
    page.on(
        "response",
        lambda r: (
            issued.append(r.json()["ticket"]) if r.url.endswith("/terminal/tickets/") else None
        ),
    )
    new_user_logged_in(page, spoon_server, "/terminal/")
    wait_connected(page)
    wait_for_screen(page, "$ ")

    page.locator(".xterm").click()
    page.keyboard.type("echo $((6*7))")
    page.keyboard.press("Enter")
    wait_for_screen(page, "\n42")
    page.screenshot(path=str(tmp_path / "terminal.png"))

    page.reload()
    wait_connected(page)
    wait_for_screen(page, "echo $((6*7))")
    screen = page.evaluate(SCREEN_TEXT)
    assert "\n42" in screen, "the same session, with its earlier output"

    assert len(issued) == 2, "one fresh ticket per connection"
    log = spoon_server.output()
    assert not any(ticket in log for ticket in issued), "tickets never reach the logs"


def test_the_terminal_fills_the_window_and_refits(spoon_server, page, new_user_logged_in):
    page.set_viewport_size({"width": 1200, "height": 800})
    new_user_logged_in(page, spoon_server, "/terminal/")
    wait_connected(page)
    wide = page.evaluate("[window.spoonTerminal.cols, window.spoonTerminal.rows]")
    page.set_viewport_size({"width": 700, "height": 500})
    page.wait_for_function(f"() => window.spoonTerminal.cols < {wide[0]}")
    narrow = page.evaluate("[window.spoonTerminal.cols, window.spoonTerminal.rows]")
    assert narrow[0] < wide[0] and narrow[1] < wide[1]
    screen = page.locator(".xterm-screen").bounding_box()
    assert screen["width"] > 0.9 * 700 - 20
    shell_sees_the_terminals_size(page)


def shell_sees_the_terminals_size(page):
    """`stty size` in the page's shell says the page's terminal's size."""
    cols, rows = page.evaluate("[window.spoonTerminal.cols, window.spoonTerminal.rows]")
    page.locator(".xterm").click()
    # The new size reaches tmux a moment after the page has it: the first
    # `stty size` may come before it does.
    expected = f"\n{rows - 1} {cols}"  # tmux's status line takes a row
    for attempt in range(3):
        page.keyboard.type("stty size")
        page.keyboard.press("Enter")
        try:
            wait_for_screen(page, expected, timeout=5_000)
            return
        except PlaywrightTimeout:
            assert attempt < 2, page.evaluate(SCREEN_TEXT)[-500:]


def test_two_tabs_of_two_sizes_each_keep_their_own(spoon_server, browser, new_user_logged_in):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    wide = context.new_page()
    try:
        new_user_logged_in(wide, spoon_server, "/terminal/")
        wait_connected(wide)
        wait_for_screen(wide, "$ ")
        narrow = context.new_page()
        narrow.set_viewport_size({"width": 640, "height": 420})
        narrow.goto(f"{spoon_server.url}/terminal/")
        wait_connected(narrow)
        wait_for_screen(narrow, "$ ")
        shell_sees_the_terminals_size(narrow)
        shell_sees_the_terminals_size(wide)  # the narrow tab did not shrink it
        shell_sees_the_terminals_size(narrow)
    finally:
        context.close()


def test_copy_and_paste_with_ctrl_shift(spoon_server, browser, new_user_logged_in):
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        new_user_logged_in(page, spoon_server, "/terminal/")
        wait_connected(page)
        wait_for_screen(page, "$ ")
        page.locator(".xterm").click()
        # Ctrl, and Cmd (Meta) as on a Mac, the same.
        for key, sum_, result in (("Control", "2+2", "4"), ("Meta", "5+5", "10")):
            command = f"echo {key}-$(({sum_}))"
            page.evaluate("text => navigator.clipboard.writeText(text)", command)
            page.keyboard.press(f"{key}+Shift+V")
            wait_for_screen(page, command)  # the paste reads the clipboard first
            page.keyboard.press("Enter")
            wait_for_screen(page, f"\n{key}-{result}")

            page.evaluate("navigator.clipboard.writeText('')")
            page.evaluate("window.spoonTerminal.selectAll()")
            page.keyboard.press(f"{key}+Shift+C")
            page.wait_for_function(
                "async needle => (await navigator.clipboard.readText()).includes(needle)",
                arg=f"\n{key}-{result}",
            )
    finally:
        context.close()


def test_a_paste_over_a_megabyte_goes_through_daphne(spoon_server, page, new_user_logged_in):
    new_user_logged_in(page, spoon_server, "/terminal/")
    wait_connected(page)
    wait_for_screen(page, "$ ")
    page.locator(".xterm").click()
    page.keyboard.type("stty -echo; echo rea''dy-to-paste; cat > ~/pasted.txt; stty echo")
    page.keyboard.press("Enter")
    wait_for_screen(page, "ready-to-paste")
    size = page.evaluate(
        """() => {
            const line = "0123456789".repeat(9) + "\\n";
            const text = line.repeat(15000);
            window.spoonTerminal.paste(text);
            return text.length;
        }"""
    )
    page.keyboard.press("Control+d")
    page.keyboard.type("wc -c < ~/pasted.txt")
    page.keyboard.press("Enter")
    wait_for_screen(page, f"\n{size}", timeout=60_000)


def test_a_stopped_box_says_why_and_waits_for_the_user(spoon_server, page, new_user_logged_in):
    from boxes import docker_engine

    username = new_user_logged_in(page, spoon_server, "/terminal/")
    wait_connected(page)
    stop = (
        "from boxes import lifecycle; from boxes.models import Box; "
        f"lifecycle.stop_box(Box.objects.get(user__username={username!r}))"
    )
    spoon_server.python(stop)
    status = page.locator("[data-terminal-status]")
    page.wait_for_selector("[data-terminal-status][data-state=stopped]", timeout=30_000)
    assert "stopped by an operator" in status.inner_text()
    # Must stay a wait of a fixed time: it checks that nothing happens in it.
    page.wait_for_timeout(3000)
    assert status.get_attribute("data-state") == "stopped", "no reconnect by itself"
    assert docker_engine.container_state(f"spoon-box-{username}") is None, "nor a start"
    page.keyboard.press("a")
    wait_connected(page)
    assert docker_engine.container_state(f"spoon-box-{username}").running


@pytest.mark.slow
def test_staff_watching_shows_on_the_users_page_and_typing_is_a_choice(
    spoon_server, browser, new_user_logged_in
):
    user_page = browser.new_context().new_page()
    username = new_user_logged_in(user_page, spoon_server, "/terminal/")
    wait_connected(user_page)
    user_id = spoon_server.user_id(username)

    staff_page = browser.new_context().new_page()
    staff_page.goto(f"{spoon_server.url}/login/?next=/terminal/user/{user_id}/")
    staff_page.fill("#id_username", spoon_server.staff)
    staff_page.fill("#id_password", "correct-horse-battery")
    staff_page.click("button[type=submit]")
    staff_page.wait_for_url(f"**/terminal/user/{user_id}/")
    wait_connected(staff_page)
    assert "read-only" in staff_page.locator("[data-terminal-status]").inner_text()
    assert not staff_page.locator("[data-allow-typing]").is_checked()

    user_page.wait_for_selector("[data-terminal-status][data-state=watched]", timeout=20_000)
    assert (
        f"Staff ({spoon_server.staff}) have this terminal open, read-only."
        in user_page.locator("[data-terminal-status]").inner_text()
    )

    staff_page.locator("[data-allow-typing]").check()
    user_page.wait_for_selector(
        f"[data-terminal-status]:has-text('Staff ({spoon_server.staff}) have this terminal open,"
        " and can type.')",
        timeout=30_000,
    )
    staff_page.context.close()
    user_page.wait_for_selector("[data-terminal-status][data-state=connected]", timeout=30_000)
    user_page.context.close()


CELL_OF = """(needle) => {
  const term = window.spoonTerminal;
  const buffer = term.buffer.active;
  const box = term.element.querySelector(".xterm-screen").getBoundingClientRect();
  const width = box.width / term.cols, height = box.height / term.rows;
  for (let y = buffer.length - 1; y >= 0; y--) {
    const text = buffer.getLine(y).translateToString(true);
    const x = text.indexOf(needle);
    if (x >= 0 && !text.includes("echo")) {
      const row = y - buffer.viewportY;
      return {
        left: box.left + (x + 0.5) * width,
        right: box.left + (x + needle.length - 0.5) * width,
        y: box.top + row * height + height / 2,
      };
    }
  }
  return null;
}"""


def test_a_mouse_selection_in_tmux_reaches_the_clipboard(spoon_server, browser, new_user_logged_in):
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    new_user_logged_in(page, spoon_server, "/terminal/")
    wait_connected(page)
    wait_for_screen(page, "$ ")
    page.locator(".xterm").click()
    page.keyboard.type("echo copy-me-$((6*7))\n")
    wait_for_screen(page, "\ncopy-me-42")
    assert "Select with the mouse to copy" in page.locator(".terminal-help").inner_text()
    cell = page.evaluate(CELL_OF, "copy-me-42")
    page.mouse.move(cell["left"], cell["y"])
    page.mouse.down()
    page.mouse.move((cell["left"] + cell["right"]) / 2, cell["y"], steps=5)
    page.mouse.move(cell["right"], cell["y"], steps=5)
    page.mouse.up()
    page.wait_for_function(
        "async () => (await navigator.clipboard.readText()) === 'copy-me-42'", timeout=10_000
    )

    page.keyboard.type("echo other-$((2*4))\n")  # a double-click copies a word
    wait_for_screen(page, "\nother-8")
    cell = page.evaluate(CELL_OF, "other-8")
    page.mouse.dblclick((cell["left"] + cell["right"]) / 2, cell["y"])
    page.wait_for_function(
        "async () => (await navigator.clipboard.readText()) === 'other-8'", timeout=10_000
    )
    context.close()


def test_the_wheel_scrolls_three_lines_a_notch(spoon_server, page, new_user_logged_in):
    import re

    from tests.support import SCREEN_TEXT

    new_user_logged_in(page, spoon_server, "/terminal/")
    wait_connected(page)
    wait_for_screen(page, "$ ")
    page.locator(".xterm").click()
    page.keyboard.type("seq 1 400\n")
    wait_for_screen(page, "\n400")
    box = page.locator(".xterm-screen").bounding_box()
    page.mouse.move(box["x"] + 100, box["y"] + 100)
    scrolled = [0]
    for _ in range(2):
        page.mouse.wheel(0, -100)  # one notch
        page.wait_for_function(  # tmux's copy mode shows [position/lines] once it moved
            f"""(before) => {{
                const at = ({SCREEN_TEXT})().match(/\\[(\\d+)\\/\\d+\\]/);
                return at && Number(at[1]) !== before;
            }}""",
            arg=scrolled[-1],
        )
        position = re.search(r"\[(\d+)/\d+\]", page.evaluate(SCREEN_TEXT))
        scrolled.append(int(position.group(1)))
    assert scrolled[1:] == [3, 6], "tmux's copy mode, three lines a notch from the first"


def test_a_terminal_that_cannot_open_says_why_in_red(spoon_server, page, new_user_logged_in):

    username = new_user_logged_in(page, spoon_server, "/")
    missing = (
        "from django.contrib.auth import get_user_model; from boxes import lifecycle; "
        f"box = lifecycle.box_for(get_user_model().objects.get(username={username!r})); "
        "box.image = 'spoon-missing:1'; box.save()"
    )
    spoon_server.python(missing)
    page.goto(f"{spoon_server.url}/terminal/")
    status = page.locator("[data-terminal-status]")
    page.wait_for_selector("[data-terminal-status][data-state=failed]", timeout=60_000)
    assert "spoon-missing:1" in status.inner_text(), status.inner_text()
    assert status.evaluate("el => getComputedStyle(el).color") == "rgb(255, 123, 114)", "red"
