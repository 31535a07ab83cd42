"""The pages feel finished in Debian's chromium: errors read as sentences next
to what they are about, destructive actions ask first and name what goes,
what a save did is said, and an agent's turn reads as a conversation."""

import json
import subprocess
import time

import pytest

from tests.support import wait_connected, wait_for_screen

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("pages_browser")]
# Its tests drive a daphne and never use the database in this process.
SHARES_A_BROWSER = True


def answer_prompts(page, *answers):
    """Answer the page's next prompt() dialogs in turn, and accept confirms."""
    pending = list(answers)

    def on_dialog(dialog):
        if dialog.type == "prompt" and pending:
            dialog.accept(pending.pop(0))
        else:
            dialog.accept()

    page.on("dialog", on_dialog)


def test_bad_dotfile_paths_are_refused_with_the_servers_sentence(
    spoon_server, page, new_user_logged_in
):
    new_user_logged_in(page, spoon_server, "/settings/dotfiles/")
    message = page.locator("[data-message]")
    for typed, said in [
        ("../etc/passwd", "A path cannot contain '.' or '..' parts."),
        ("/etc/abs", "Give the path relative to your home, without a leading '/'."),
        ("a\tb", "A path cannot contain NUL, newlines or other control characters."),
    ]:
        page.once("dialog", lambda dialog, typed=typed: dialog.accept(typed))
        page.click("[data-new-file]")
        page.wait_for_selector(f"[data-message].error:has-text({json.dumps(said)})")
        assert "Unexpected token" not in message.inner_text()
    assert page.locator("[data-tree] .tree-file").count() == 0, "nothing was made"


def test_a_bad_workspace_name_is_refused_next_to_its_field(spoon_server, page, new_user_logged_in):
    new_user_logged_in(page, spoon_server, "/workspaces/")
    for field, value, said in [
        ("#spoon", "../up", "Spoon name '../up': use letters, digits"),
        ("#branch", "a..b", "Branch 'a..b': segments of letters"),
        ("#repo_url", "ftp://example.com/x.git", "ftp"),
    ]:
        page.fill("#spoon", "proj")
        page.fill("#branch", "main")
        page.fill(field, value)
        page.click("text=Make workspace")
        error = page.locator(f"[data-error-for={field[1:]}]")
        assert said in error.inner_text(), error.inner_text()
        assert page.locator("[data-error-for]").count() == 1, "only the field at fault"
        assert page.input_value(field) == value, "what was typed is kept"


def test_a_save_says_what_happened_in_the_box(spoon_server, page, new_user_logged_in):
    new_user_logged_in(page, spoon_server, "/terminal/")
    wait_connected(page)  # the box runs
    page.goto(spoon_server.url + "/settings/dotfiles/")
    answer_prompts(page, ".spoon-page-test")
    page.click("[data-new-file]")
    page.wait_for_selector("[data-path]:has-text('~/.spoon-page-test')")
    page.locator(".cm-content").click()
    page.keyboard.type("hello\n")
    page.keyboard.press("Control+s")
    page.wait_for_selector(
        "[data-message]:has-text('Saved ~/.spoon-page-test and wrote it into your box.')",
        timeout=30_000,
    )


def test_destructive_actions_ask_first_and_name_what_goes(spoon_server, page, new_user_logged_in):
    new_user_logged_in(page, spoon_server, "/workspaces/")
    page.fill("#spoon", "keepme")
    page.fill("#branch", "main")
    page.click("text=Make workspace")
    page.wait_for_url("**/workspaces/*/", timeout=60_000)
    page.goto(spoon_server.url + "/workspaces/")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.check("[data-confirm-when]")
    with page.expect_event("dialog"):
        page.click("form[data-confirm] button[type=submit]")
    assert asked == [
        "Delete the workspace keepme/main and its folder ~/Code/keepme/main, with everything "
        "in it? That cannot be undone."
    ]
    assert page.locator("text=~/Code/keepme/main").count() == 1, "dismissed: nothing goes"

    page.goto(spoon_server.url + "/settings/secrets/")
    page.fill("#id_name", "PAGE_TOKEN")
    page.fill("#id_value", "x")
    page.click("form:not([action]) button[type=submit]")
    page.wait_for_selector("text=Saved PAGE_TOKEN.")
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.click("form[data-confirm] button[type=submit]")
    page.wait_for_selector("text=Deleted PAGE_TOKEN.")
    assert asked[-1].startswith("Delete the secret PAGE_TOKEN?")


def test_a_multi_line_secret_reaches_the_box_unchanged(spoon_server, page, new_user_logged_in):
    key = "-----BEGIN KEY-----\nline one\nline two\n-----END KEY-----"
    new_user_logged_in(page, spoon_server, "/settings/secrets/")
    page.fill("#id_name", "PEM_KEY")
    page.fill("#id_value", key)
    page.click("form:not([action]) button[type=submit]")
    page.wait_for_selector("text=Saved PEM_KEY.")
    page.goto(spoon_server.url + "/terminal/")
    wait_connected(page)
    wait_for_screen(page, "$ ")
    page.locator(".xterm").click()
    page.keyboard.type('printf %s "$PEM_KEY" | sha256sum | cut -c1-12\n')
    import hashlib

    wait_for_screen(page, hashlib.sha256(key.encode()).hexdigest()[:12])


EVENTS = [
    {"type": "item.completed", "item": {"type": "agent_message", "text": "Looking at it."}},
    {"type": "item.started", "item": {"type": "command_execution", "command": "ls"}},
    {
        "type": "item.completed",
        "item": {
            "type": "command_execution",
            "command": "ls",
            "aggregated_output": "README.md\n",
            "exit_code": 0,
        },
    },
    {
        "type": "turn.failed",
        "error": {"message": json.dumps({"error": {"message": "quota used up"}})},
    },
]
# An agent that prints codex's event shapes (no model service is reachable here).
STAND_IN = "printf '%s\\n' \"$@\"; exit 1"


def test_an_agent_turn_reads_as_a_conversation(spoon_server, page, new_user_logged_in):
    register = (
        "from workspaces.models import Agent; "
        "Agent.objects.update_or_create(name='talker', defaults={'argv': "
        f"['sh', '-c', {STAND_IN!r}, 'talker', *{[json.dumps(e) for e in EVENTS]!r}, "
        "'{prompt}']})"
    )
    spoon_server.python(register)
    new_user_logged_in(page, spoon_server, "/workspaces/")
    page.fill("#spoon", "talk")
    page.fill("#branch", "main")
    page.click("text=Make workspace")
    page.wait_for_url("**/workspaces/*/", timeout=60_000)
    page.select_option("#agent", "talker")
    page.click("form[action$='/agent'] button")
    page.fill("#prompt", "what is here?")
    page.click("[data-turn-form] button[type=submit]")
    page.wait_for_selector("[data-run-title][data-status=failed]", timeout=60_000)
    transcript = page.locator("[data-transcript]")
    transcript.locator(".entry-error").wait_for()
    assert "Looking at it." in transcript.locator(".entry-message").inner_text()
    command = transcript.locator(".entry-command")
    assert "$ ls" in command.inner_text() and "README.md" in command.locator("pre").inner_text()
    assert command.locator(".exit").inner_text() == "(exit 0)"
    assert transcript.locator(".entry-error p").inner_text() == "quota used up"
    assert "quota used up" in page.locator("[data-run-title]").inner_text()
    assert "{" not in page.locator("[data-run-title]").inner_text(), "a sentence, not JSON"


def set_box(server, username, change):
    """Change the user's Box row on the server, as another request would."""
    code = (
        "from datetime import timedelta; from django.utils import timezone; "
        "from boxes.models import Box; "
        f"Box.objects.filter(user__username={username!r}).update({change})"
    )
    server.python(code)


def test_the_landing_page_puts_the_box_first(spoon_server, page, new_user_logged_in):
    username = new_user_logged_in(page, spoon_server, "/")
    card = page.locator("[aria-label='Your box']")
    assert card.get_attribute("data-box-state") == "not made yet"
    assert page.locator("[aria-label=Engine]").count() == 0, "engine details are for staff"
    page.click("[data-box-start]")
    page.wait_for_selector("[aria-label='Your box'][data-box-state=running]", timeout=60_000)
    assert "since" in card.inner_text() and "spoon-job:1" in card.inner_text()
    idle = page.locator("[data-idle]")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the box start's dotfiles apply holds it for a moment
        if "unless something happens in it" in idle.inner_text():
            break
        assert idle.inner_text() == "not while work holds it (dotfiles)"
        page.wait_for_timeout(500)  # the page shows it as it was: read it again
        page.reload()
    assert "unless something happens in it" in idle.inner_text()
    set_box(spoon_server, username, "update_pending=True")
    page.reload()
    assert card.get_attribute("data-box-state") == "update pending"
    assert "moves to a newer image at its next stop" in card.inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-box-stop]")
    page.wait_for_selector("[aria-label='Your box'][data-box-state=stopped]", timeout=60_000)
    assert "It was stopped by you." in card.inner_text()
    assert page.locator("[data-box-start]").is_visible()
    set_box(spoon_server, username, "claimed_until=timezone.now() + timedelta(seconds=60)")
    page.reload()
    assert card.get_attribute("data-box-state") == "starting", "another request brings it up"
    assert page.locator("[data-box-start]").count() == 0
    set_box(spoon_server, username, "claimed_until=None")

    page.goto(spoon_server.url + "/workspaces/")
    page.fill("#spoon", "front")
    page.fill("#branch", "main")
    page.click("text=Make workspace")
    page.wait_for_url("**/workspaces/*/", timeout=60_000)
    page.fill("#command", "echo landed")
    page.click("[data-run-form] button[type=submit]")
    page.wait_for_selector("[data-run-title][data-status=succeeded]", timeout=60_000)
    page.goto(spoon_server.url + "/")
    page.click("[aria-label='Latest runs'] a:has-text('echo landed')")
    page.wait_for_selector("[data-run-output]:has-text('landed')", timeout=30_000)
    page.goto(spoon_server.url + "/")
    page.click("[aria-label=Workspaces] a:has-text('~/Code/front/main')")
    page.wait_for_url("**/workspaces/*/")


def test_staff_see_the_engine_on_the_landing_page(spoon_server, page):
    page.goto(f"{spoon_server.url}/login/?next=/")
    page.fill("#id_username", spoon_server.staff)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(spoon_server.url + "/")
    assert "holds the job image" in page.locator("[aria-label=Engine]").inner_text()


def test_the_admin_box_list_fits_a_1400_px_screen(spoon_server, page):
    page.goto(f"{spoon_server.url}/login/?next=/terminal/")
    page.fill("#id_username", spoon_server.staff)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    wait_connected(page)  # her box runs, held by this terminal
    admin = page.context.new_page()
    admin.set_viewport_size({"width": 1400, "height": 900})
    admin.goto(spoon_server.url + "/admin/boxes/box/")
    row = admin.locator("#result_list tbody tr", has_text=f"spoon-box-{spoon_server.staff}")
    assert row.locator(".field-engine_state").inner_text() == "running"
    assert row.locator(".field-held_by").inner_text() == "terminal"
    assert row.locator(".field-open_terminal a").is_visible()
    results = admin.locator(".results")
    overflow = results.evaluate("el => el.scrollWidth - el.clientWidth")
    assert overflow <= 0, f"the list scrolls sideways by {overflow} px"
    right = row.locator(".field-open_terminal").evaluate("el => el.getBoundingClientRect().right")
    assert right <= 1400


def test_a_disabled_button_looks_disabled(spoon_server, page, new_user_logged_in):
    new_user_logged_in(page, spoon_server, "/settings/dotfiles/")
    apply = page.locator("[data-apply]")
    enabled = apply.evaluate("el => getComputedStyle(el).opacity")
    apply.evaluate("el => { el.disabled = true; }")  # as while an apply runs
    look = apply.evaluate("el => [getComputedStyle(el).opacity, getComputedStyle(el).cursor]")
    assert enabled == "1" and look == ["0.45", "not-allowed"], (enabled, look)


def test_the_pages_fit_a_phone(spoon_server, page, new_user_logged_in, tmp_path):
    page.set_viewport_size({"width": 390, "height": 844})
    new_user_logged_in(page, spoon_server, "/")
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    page.goto(f"{spoon_server.url}/settings/ssh-keys/")
    page.fill("#id_name", "a laptop with a long name")
    page.fill("#id_public_key", key.with_suffix(".pub").read_text())
    page.click("text=Add key")
    page.wait_for_selector("table.ssh-keys")  # a key listed: the widest the page gets
    for path in ("/", "/workspaces/", "/settings/dotfiles/", "/settings/secrets/", "/terminal/",
                 "/settings/ssh-keys/"):  # fmt: skip
        page.goto(f"{spoon_server.url}{path}")
        page.wait_for_load_state("networkidle")
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, f"{path} is {wide} px wide: it scrolls sideways on a phone"
