"""Settings -> Dotfiles in Debian's chromium, then the terminal uses what was saved."""

import pytest

from tests.support import wait_connected, wait_for_screen

pytestmark = pytest.mark.browser


def test_an_alias_saved_in_the_editor_works_in_the_terminal(spoon_server, page, new_user_logged_in):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    new_user_logged_in(page, spoon_server, "/settings/dotfiles/")

    page.once("dialog", lambda dialog: dialog.accept(".bashrc"))
    page.click("[data-new-file]")
    # The home has a .bashrc already (Debian's): it opens as the home has it.
    page.wait_for_selector("[data-path]:has-text('as your box')", timeout=60_000)
    assert "~/.bashrc" in page.locator("[data-path]").inner_text()
    assert "alias" in page.locator(".cm-content").inner_text(), "Debian's own lines"
    page.locator(".cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\nalias spoonhi='echo hi-from-$((40+2))'\n")
    page.keyboard.press("Control+s")
    page.wait_for_selector("[data-message]:has-text('Saved ~/.bashrc')")
    page.wait_for_selector("[data-tree] .tree-file[data-file='.bashrc']")
    assert page.locator("[data-tree] .tree-file", has_text=".bashrc").count() == 1

    page.goto(spoon_server.url + "/terminal/")
    wait_connected(page)
    wait_for_screen(page, "$ ")
    page.locator(".xterm").click()
    page.keyboard.type("spoonhi")
    page.keyboard.press("Enter")
    wait_for_screen(page, "\nhi-from-42")
    assert not errors


def test_a_home_dotfile_is_adopted_in_a_click_unchanged(spoon_server, page, new_user_logged_in):
    new_user_logged_in(page, spoon_server, "/terminal/")
    wait_connected(page)
    wait_for_screen(page, "$ ")
    page.locator(".xterm").click()
    page.keyboard.type("printf 'set editing-mode vi\\n' > ~/.inputrc; echo made-$((6*7))\n")
    wait_for_screen(page, "made-42")
    page.goto(spoon_server.url + "/settings/dotfiles/")
    adopt = page.locator("[data-home-list] [data-adopt='.inputrc']")
    adopt.wait_for(timeout=30_000)
    adopt.click()
    page.wait_for_selector("[data-message]:has-text('is in your dotfiles now')")
    page.wait_for_selector("[data-tree] .tree-file[data-file='.inputrc']")
    assert page.locator("[data-home-list] [data-adopt='.inputrc']").count() == 0
    page.click("[data-tree] .tree-file[data-file='.inputrc']")
    page.wait_for_selector(".cm-content:has-text('set editing-mode vi')")


def test_secrets_page_never_shows_a_value_back(spoon_server, page, new_user_logged_in):
    new_user_logged_in(page, spoon_server, "/settings/secrets/")
    page.fill("#id_name", "1BAD")
    page.fill("#id_value", "x")
    page.click("form:not([action]) button[type=submit]")
    assert "environment variable name" in page.locator(".field-error").inner_text()
    page.fill("#id_name", "MY_TOKEN")
    page.fill("#id_value", "tok-never-shown-9")
    page.click("form:not([action]) button[type=submit]")
    page.wait_for_selector("text=Saved MY_TOKEN.")
    assert "tok-never-shown-9" not in page.content()
    assert "tok-never-shown-9" not in spoon_server.output()
