"""Settings -> Dotfiles in Debian's chromium, then the terminal uses what was saved."""

import pytest

from boxes import docker_engine
from tests import git_server
from tests.support import wait_connected, wait_for_screen

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("dotfiles_browser")]
# Its tests drive a daphne and never use the database in this process.
SHARES_A_BROWSER = True


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


def test_setup_arguments_answer_the_question_a_warning_pointed_at(
    spoon_server, page, new_user_logged_in
):
    username = new_user_logged_in(page, spoon_server, "/terminal/")
    wait_connected(page)
    wait_for_screen(page, "$ ")
    install = (
        '#!/bin/sh\\nif [ "$1" = --force ]; then echo "[$2]" > ~/.installed; exit; fi\\n'
        'printf "Overwrite? [y/N] "; read a || exit 0\\n'
    )
    page.locator(".xterm").click()
    page.keyboard.type(
        "mkdir -p ~/src/dots && cd ~/src/dots && git init -q -b main"
        f" && printf '{install}' > install.sh && chmod +x install.sh && git add -A"
        " && git -c user.name=t -c user.email=t@t commit -qm dots && echo made-$((6*7))\n"
    )
    wait_for_screen(page, "made-42")

    page.goto(spoon_server.url + "/settings/dotfiles/")
    page.fill("#repo_url", f"file:///home/{username}/src/dots")
    page.check("[data-config] [name=enabled]")
    page.click("[data-config] button[type=submit]")
    page.wait_for_selector("[data-message]:has-text('Repository settings saved')")
    page.click("[data-apply]")
    page.wait_for_selector("[data-run-status][data-status=warning]", timeout=60_000)
    message = page.locator("[data-run-notes]").inner_text()
    assert message.startswith("The setup changed nothing in your home. It seems to have asked")
    assert 'seems to have asked "Overwrite? [y/N]"' in message
    assert "such as --force" in message
    status_color = page.locator("[data-run-status]").evaluate("el => getComputedStyle(el).color")
    assert status_color == "rgb(161, 92, 0)", "amber: it ran, but look"

    page.fill("#setup_args", '--force "two words"')
    page.click("[data-config] button[type=submit]")
    page.wait_for_selector("[data-message]:has-text('Repository settings saved')")
    page.click("[data-apply]")
    page.wait_for_selector("[data-run-status][data-status=succeeded]", timeout=60_000)
    assert "running install.sh --force two words" in page.locator("[data-log]").inner_text()

    page.reload()
    page.wait_for_function("() => document.querySelector('#setup_args').value !== ''")
    assert page.input_value("#setup_args") == '--force "two words"'
    page.evaluate("document.querySelector('#setup_args').value = '--ok \\u0007bell'")
    page.click("[data-config] button[type=submit]")
    page.wait_for_selector("[data-error-for=setup_args]:has-text('control characters')")


def applied(page) -> str:
    """Apply now, and how the run ended."""
    page.click("[data-apply]")
    page.wait_for_selector("[data-apply]:enabled", timeout=60_000)
    return page.get_attribute("[data-run-status]", "data-status")


def test_a_private_repository_over_ssh_then_https(spoon_server, page, new_user_logged_in):
    """A deploy key made in the page, then a token typed in it, each cloning
    from a real git server in the user's box's network namespace."""
    token = "tok-BROWSER-CANARY-3c9d"
    page.on("dialog", lambda dialog: dialog.accept())
    username = new_user_logged_in(page, spoon_server, "/terminal/")
    wait_connected(page)  # the box runs: the git server joins its network
    page.goto(spoon_server.url + "/settings/dotfiles/")
    page.check("[name=access][value=deploy_key]")
    page.click("[data-generate-key]")
    page.wait_for_selector("[data-message]:has-text('A new deploy key is made')")
    public_key = page.input_value("[data-public-key]")
    assert public_key.startswith("ssh-ed25519 ") and f"spoon-dotfiles-{username}-" in public_key
    assert page.locator("[data-fingerprint]").inner_text().startswith("SHA256:")
    server = git_server.start(f"spoon-box-{username}", token=token, authorized_key=public_key)
    try:
        page.fill("#repo_url", server.ssh_url)
        page.click("[data-config] button[type=submit]")
        page.wait_for_selector("[data-message]:has-text('Repository settings saved')")
        assert applied(page) == "succeeded"
        log = page.locator("[data-log]").inner_text()
        assert "with your deploy key" in log and "trusting 127.0.0.1:12222's host key" in log

        page.check("[name=access][value=token]")
        page.fill("#repo_url", server.http_url)
        page.click("[data-config] button[type=submit]")
        page.wait_for_selector("[data-error-for=token]:has-text('Paste the token first')")
        page.fill("#token", token)
        page.click("[data-config] button[type=submit]")
        page.wait_for_selector("[data-message]:has-text('Repository settings saved')")
        assert page.is_visible("[data-token-saved]") and page.input_value("#token") == ""
        assert applied(page) == "succeeded"
        assert "with your token" in page.locator("[data-log]").inner_text()

        page.reload()
        page.wait_for_selector("[data-token-saved]:visible")
        assert token not in page.content()
        assert "saved" in page.get_attribute("#token", "placeholder")
        page.click("[data-forget-token]")
        page.wait_for_selector("[data-message]:has-text('The token is forgotten')")
        assert page.is_checked("[name=access][value='']"), "public again"
        page.check("[name=access][value=deploy_key]")
        page.click("[data-remove-key]")
        page.wait_for_selector("[data-message]:has-text('The deploy key is removed')")
        assert not page.is_visible("[data-public-key]")
        assert page.inner_text("[data-generate-key]") == "Generate a deploy key"
    finally:
        docker_engine.remove_container(server.name)
    assert token not in spoon_server.output()
