"""The JSON API of the dotfiles page."""

import base64
import json

import pytest
from django.test import Client

from boxes import commands, lifecycle
from dotfiles.models import DotfilesRun, OverlayFile
from tests.waits import join_threads, until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(make_user):
    client = Client()
    client.user = make_user()
    client.force_login(client.user)
    return client


def put(client, path, **data):
    return client.put(
        f"/api/dotfiles/files/{path}", json.dumps(data), content_type="application/json"
    )


def test_files_round_trip_text_and_binary(api):
    assert put(api, ".bashrc", content="alias ll='ls -l'\n", executable=False).status_code == 200
    blob = bytes(range(256))
    response = put(api, "bin/blob", content_base64=base64.b64encode(blob).decode(), executable=True)
    assert response.json()["size"] == 256
    listing = api.get("/api/dotfiles/files/").json()["files"]
    assert [(f["path"], f["executable"]) for f in listing] == [
        (".bashrc", False),
        ("bin/blob", True),
    ]
    assert api.get("/api/dotfiles/files/.bashrc").json()["content"] == "alias ll='ls -l'\n"
    got = api.get("/api/dotfiles/files/bin/blob").json()
    assert base64.b64decode(got["content_base64"]) == blob


def test_rename_and_delete_files_and_folders(api):
    for path in (".config/nvim/init.lua", ".config/nvim/lua/x.lua", ".gitconfig"):
        put(api, path, content=path)
    move = json.dumps({"from": ".config/nvim", "to": ".config/vim"})
    response = api.post("/api/dotfiles/rename", move, content_type="application/json")
    assert response.json() == {"renamed": 2}
    assert (
        api.get("/api/dotfiles/files/.config/vim/lua/x.lua").json()["content"]
        == ".config/nvim/lua/x.lua"
    )
    assert api.delete("/api/dotfiles/files/.config").status_code == 204
    assert [f["path"] for f in api.get("/api/dotfiles/files/").json()["files"]] == [".gitconfig"]
    assert api.delete("/api/dotfiles/files/nothing").status_code == 404


@pytest.mark.parametrize(
    "path, data, status, field",
    [
        ("../etc/x", {"content": "x"}, 400, "path"),
        (".spoon/env-hash", {"content": "x"}, 400, "path"),
        (".x", {"content": 5}, 400, "content"),
        (".x", {"content_base64": "@@@"}, 400, "content_base64"),
        (".x", {"content": "x", "executable": "yes"}, 400, "executable"),
    ],
)
def test_bad_input_is_a_json_error_naming_the_field(api, path, data, status, field):
    response = put(api, path, **data)
    assert response.status_code == status
    assert response.json()["field"] == field and response.json()["error"]


def test_files_over_the_limit_are_refused_by_name(api, settings):
    settings.SPOON_DOTFILE_MAX_BYTES = 10
    response = put(api, "big.txt", content="x" * 11)
    assert response.status_code == 413
    assert "big.txt" in response.json()["error"]
    assert not OverlayFile.objects.exists()


def test_a_file_cannot_shadow_a_folder(api):
    put(api, ".config/a", content="x")
    assert put(api, ".config", content="x").status_code == 400


def test_config_validation(api):
    assert api.get("/api/dotfiles/config").json()["repo_url"] == ""
    bad = api.put("/api/dotfiles/config", json.dumps({"repo_url": "http://example.com/d"}),
                  content_type="application/json")  # fmt: skip
    assert bad.status_code == 400 and bad.json()["field"] == "repo_url"
    wanted = {"repo_url": "https://example.com/me/dots", "ref": "main", "enabled": True}
    good = api.put("/api/dotfiles/config", json.dumps(wanted), content_type="application/json")
    assert good.json()["ref"] == "main"


def test_login_and_csrf_are_required(make_user):
    assert Client().get("/api/dotfiles/files/").status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_user())
    assert put(strict, ".x", content="x").status_code == 403


def test_apply_now_runs_in_the_box_and_is_listed(api, engine):
    put(api, ".hello", content="from the api\n")
    run_id = api.post("/api/dotfiles/apply").json()["run"]
    run = until(
        lambda: (
            (answer := api.get(f"/api/dotfiles/runs/{run_id}").json())["status"] != "running"
            and answer
        ),
        "the apply never ended",
    )
    join_threads(f"dotfiles-{api.user.pk}")  # it lets go of the box before the test ends
    assert run["status"] == "succeeded", run["log"]
    assert api.get("/api/dotfiles/runs/").json()["runs"][0]["id"] == run_id
    box = lifecycle.box_for(api.user)
    assert commands.run(box, ["cat", ".hello"]).output == b"from the api\n"


def test_the_home_is_read_from_the_box_for_new_paths_and_adoption(api, engine, sh):
    assert api.get("/api/dotfiles/home/").json() == {"running": False, "files": []}, (
        "listing never starts a box"
    )
    missing = api.get("/api/dotfiles/home/.no-such-rc")
    assert missing.status_code == 404 and missing.json()["field"] == "path"
    box = lifecycle.box_for(api.user)  # that read started the box: the user asked
    sh(box, "printf '[user]\\n  name = me\\n' > ~/.gitconfig && printf '\\377\\376' > ~/.blob")
    sh(box, "chmod +x ~/.blob")
    listed = {f["path"]: f for f in api.get("/api/dotfiles/home/").json()["files"]}
    assert listed[".gitconfig"] == {"path": ".gitconfig", "size": 19, "executable": False}
    assert listed[".blob"]["executable"] and ".bashrc" in listed

    text = api.get("/api/dotfiles/home/.gitconfig").json()
    assert text == {
        "path": ".gitconfig", "executable": False, "in_home": True,
        "content": "[user]\n  name = me\n",
    }  # fmt: skip
    binary = api.get("/api/dotfiles/home/.blob").json()
    assert base64.b64decode(binary["content_base64"]) == b"\xff\xfe" and binary["executable"]

    assert put(api, ".gitconfig", content=text["content"]).status_code == 200  # adopt it
    assert ".gitconfig" not in {f["path"] for f in api.get("/api/dotfiles/home/").json()["files"]}
    saved = DotfilesRun.objects.filter(user=api.user, trigger=DotfilesRun.Trigger.FILES_SAVED)
    until(saved.exclude(status=DotfilesRun.Status.RUNNING).exists, "the save never reached the box")
    join_threads(f"dotfiles-{api.user.pk}")
    assert sh(box, "cat ~/.gitconfig") == "[user]\n  name = me", "adopted unchanged"
    assert api.get("/api/dotfiles/home/../etc/passwd").status_code == 400
