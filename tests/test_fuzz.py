"""Bad input anywhere answers 4xx, never a 500 or a traceback: every view's and
API's parameters, bodies and query strings, and the terminal's frames, as
hypothesis makes them, through real requests (Django's test client, the
whole middleware stack) and real WebSocket frames.

The user fuzzing owns nothing and has no box: any id or name they send is
someone else's or no one's, and no request of theirs starts a box."""

import json
import logging

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dotfiles import files
from tests import reliability
from tests.terminal_client import TerminalClient
from workspaces import access

pytestmark = pytest.mark.django_db

EXAMPLES = 150
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
METHODS = ["GET", "POST", "PUT", "DELETE"]
# Requests that would start the fuzzing user's box or act in it, with any body.
ACTS_IN_THE_BOX = {"box-start", "box-stop", "dotfiles-apply", "workspaces:list"}

# Text where bugs live: non-ASCII digits (int("²") fails though "²".isdigit()),
# signs, huge numbers, paths that climb, NULs, lone surrogates, odd spaces.
TRICKY = st.sampled_from(
    ["\u00b2", "\u0663", "\uff11", "-1", "0", "1e999", "9" * 40, "../../etc/passwd", "a/../../b",
     "\x00", "%00", "\ud800", " ", "\u202e", "..", ".", "/", "~", "$(id)", "a" * 5000, "NaN"]
)  # fmt: skip
TEXT = st.one_of(TRICKY, st.text(max_size=40), st.integers().map(str))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["path", "content", "mode", "from", "to", "repo_url", "setup_command", "branch",
          "public_key", "title", "name", "value", "sharing", "owner", "workspace", "typing",
          "argv", "command", "prompt", "agent", "spoon", "image", "ref"]  # fmt: skip
OBJECTS = st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=5)
RAW = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"[" * 100_000, b'{"path": ' * 50_000, b"\xff\xfe\x00", b"{}" * 3]),
)


def sendable(text: str) -> str:
    """As a browser would send it: a lone surrogate cannot go over HTTP."""
    return text.encode("utf-8", "replace").decode()


def routes(resolver=None, prefix=""):
    """(name, route with its <converter:name> parts, parameter names) of every URL."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route.startswith("admin/"):
                continue  # Django's own admin, fuzzed by Django's tests
            yield from routes(entry, route)
        elif isinstance(entry, URLPattern):
            name = entry.name or ""
            if resolver.namespace:
                name = f"{resolver.namespace}:{name}"
            yield name, route, list(entry.pattern.converters)


def fill(route: str, values: list[str]) -> str:
    """The route with each <...> part replaced by the next value, as a path."""
    import re
    import urllib.parse

    parts = iter(values)
    return "/" + re.sub(
        r"<[^>]+>", lambda _: urllib.parse.quote(next(parts), safe="/"), route
    ).lstrip("^").rstrip("$")


@pytest.fixture
def mallory(make_user):
    user = make_user()
    client = Client(raise_request_exception=True)
    client.force_login(user)
    return client


@pytest.fixture
def no_errors_logged(caplog):
    caplog.set_level(logging.ERROR)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


PARAMETERIZED = [(name, route, params) for name, route, params in routes() if params]


@pytest.mark.both_databases
@pytest.mark.parametrize("name, route, params", PARAMETERIZED, ids=[r[0] for r in PARAMETERIZED])
def test_path_parameters(mallory, no_errors_logged, name, route, params):
    @FUZZ
    @given(values=st.lists(TEXT, min_size=len(params), max_size=len(params)),
           method=st.sampled_from(METHODS))  # fmt: skip
    def check(values, method):
        if not route.endswith("<path:path>"):
            values = [v.replace("/", "") for v in values]
        path = fill(route, [sendable(v) for v in values])
        answer = mallory.generic(method, path)
        assert answer.status_code < 500, (method, path, answer.content[:300])

    check()
    reliability.tried("path parameters", name, EXAMPLES)


JSON_BODIES = [
    ("/api/dotfiles/files/", "POST"),
    ("/api/dotfiles/files/.bashrc", "PUT"),
    ("/api/dotfiles/rename", "POST"),
    ("/api/dotfiles/config", "PUT"),
    ("/api/ssh-keys/", "POST"),
    ("/api/previews/ports/3000", "PUT"),
    ("/api/workspaces/1/runs/", "POST"),
]


@pytest.mark.both_databases
@pytest.mark.parametrize("path, method", JSON_BODIES)
def test_json_bodies(mallory, no_errors_logged, path, method):
    @FUZZ
    @given(body=st.one_of(OBJECTS.map(lambda o: json.dumps(o).encode()), JSON.map(
        lambda v: json.dumps(v).encode()), RAW))  # fmt: skip
    def check(body):
        answer = mallory.generic(method, path, body, content_type="application/json")
        assert answer.status_code < 500, (body[:200], answer.content[:300])

    check()
    reliability.tried("JSON bodies", f"{method} {path}", EXAMPLES)


@pytest.mark.both_databases
def test_bodies_that_are_not_json_objects_on_ones_own_things(make_user, no_errors_logged):
    """Where the user's own objects are found first, the body is read next:
    bytes that are not JSON, and JSON that is not an object, are refused there."""
    from workspaces.models import Workspace

    owner = make_user()
    client = Client(raise_request_exception=True)
    client.force_login(owner)
    workspace = Workspace.objects.create(user=owner, spoon="p", branch="main")
    files.save_file(owner, ".toolrc", b"on\n", False)
    own = [
        (f"/api/workspaces/{workspace.pk}/runs/", "POST"),
        ("/api/dotfiles/files/.toolrc", "PUT"),
        ("/api/dotfiles/config", "PUT"),
        ("/api/previews/ports/3000", "PUT"),
    ]
    not_objects = st.one_of(
        RAW.filter(bool),
        JSON.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
    )  # fmt: skip (an empty body is an empty object)

    @FUZZ
    @given(body=not_objects, where=st.sampled_from(own))
    def check(body, where):
        path, method = where
        answer = client.generic(method, path, body, content_type="application/json")
        assert 400 <= answer.status_code < 500, (path, body[:200], answer.content[:300])

    check()
    for path, method in own:
        reliability.tried(
            "bodies that are not JSON objects",
            f"{method} {path.replace(str(workspace.pk), '<own id>')}",
            EXAMPLES // len(own),
        )


FORMS = [
    ("/settings/secrets/", ["name", "value"]),
    ("/terminal/tickets/", ["owner", "workspace", "typing"]),
    ("/settings/ssh-keys/", ["public_key", "title"]),
    ("/login/", ["username", "password", "next"]),
]


@pytest.mark.both_databases
@pytest.mark.parametrize("path, fields", FORMS)
def test_forms_and_query_strings(mallory, no_errors_logged, path, fields):
    @FUZZ
    @given(values=st.lists(TEXT, min_size=len(fields), max_size=len(fields)),
           method=st.sampled_from(["GET", "POST"]))  # fmt: skip
    def check(values, method):
        data = {f: sendable(v) for f, v in zip(fields, values, strict=True)}
        if method == "GET":
            answer = mallory.get(path, data)
        else:
            answer = mallory.post(path, data)
        assert answer.status_code < 500, (method, data, answer.content[:300])

    check()
    reliability.tried("forms and query strings", path, EXAMPLES)


@pytest.mark.both_databases
@FUZZ
@given(host=TEXT, next_=TEXT)
def test_preview_open_addresses(mallory, no_errors_logged, host, next_):
    answer = mallory.get("/previews/open", {"host": sendable(host), "next": sendable(next_)})
    assert answer.status_code < 500


@pytest.mark.django_db(transaction=True)
async def test_terminal_frames(engine, make_user, session_cookie):
    """One terminal takes every frame hypothesis makes and still echoes."""
    user = await sync_to_async(make_user)()
    client = TerminalClient(await sync_to_async(session_cookie)(user),
                            await sync_to_async(access.issue)(user))  # fmt: skip
    assert await client.open()
    await client.read_until(b"$ ")
    control = st.fixed_dictionaries(
        {"type": st.sampled_from(["resize", "ack", "ping", "x"])},
        optional={"cols": JSON, "rows": JSON, "bytes": JSON},
    )
    frames = st.one_of(control.map(json.dumps), JSON.map(json.dumps), TEXT)
    sent = []

    @FUZZ
    @given(frame=frames)
    def collect(frame):
        sent.append(frame)

    collect()
    for frame in sent:
        await client.ws.send_input({"type": "websocket.receive", "text": sendable(frame)})
    await client.send_json({"type": "resize", "cols": 80, "rows": 24})
    await client.type("echo survived-$((5*5))\r")
    await client.read_until(b"survived-25", timeout=30)
    assert client.closed_with is None
    await client.close()
    reliability.tried("terminal control frames", "/ws/terminal/", len(sent))
