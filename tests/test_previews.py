"""Previews through a real daphne (spoon_server), relayed into real boxes with
the network off: sign-in through Spoon, HTTP of every kind unchanged,
WebSockets, sharing, and each bad input answered by a page that says what
to do."""

import asyncio
import hashlib
import http.client
import json
import subprocess
import time
import uuid
from types import SimpleNamespace

import pytest
import websockets

from boxes import docker_engine
from tests.previews_support import PreviewClient, connections_to, run_app, wait_listening
from tests.support import REPO, reference_nginx
from tests.waits import until

PASSWORD = "a-long-test-password"


@pytest.fixture
def visitor(spoon_server):
    """visitor(): a new user of the server, logged in; .name is theirs."""

    def make() -> PreviewClient:
        client = PreviewClient(spoon_server)
        client.name = f"u{uuid.uuid4().hex[:8]}"
        spoon_server.create_user(client.name, PASSWORD)
        client.log_in(client.name, PASSWORD)
        return client

    return make


@pytest.fixture
def owner(visitor):
    """A user whose box runs the preview app on 8080, signed in to that preview."""
    client = visitor()
    host = client.host(8080, client.name)
    client.sign_in(host)
    response, body = client.until_up(host)  # the first request started the box
    assert response.status == 502 and b"Nothing listens on 8080" in body
    run_app(client.name, 8080)
    return client


def test_a_private_preview_signs_in_through_spoon_and_passes_http_unchanged(owner):
    host = owner.host(8080, owner.name)
    response, _ = owner.request(host, "GET", "/headers?x=1", cookie=False)
    assert response.status == 302
    assert response.getheader("Location") == (
        f"http://{owner.spoon}/previews/open?host={host.replace(':', '%3A')}"
        "&next=%2Fheaders%3Fx%3D1"
    )
    assert response.getheader("Set-Cookie") is None

    response, body = owner.request(host, "GET", "/headers?x=1", {"Cookie": "theirs=1"})
    seen = json.loads(body)
    assert response.status == 200 and seen["path"] == "/headers?x=1"
    assert seen["headers"]["host"] == host, "the Host the browser sent"
    assert seen["headers"]["cookie"] == "theirs=1", "Spoon's preview cookie stays out"
    assert seen["headers"]["x-forwarded-proto"] == "http"

    connection = http.client.HTTPConnection("127.0.0.1", owner.port, timeout=30)
    for _ in range(3):  # keep-alive: one connection into the box serves them all
        assert owner.send(connection, host, "GET", "/headers").read()
    assert connections_to(owner.name, 8080) == 1
    connection.close()

    connection = http.client.HTTPConnection("127.0.0.1", owner.port, timeout=30)
    response = owner.send(connection, host, "GET", "/stream")
    arrivals = []
    while response.readline():
        arrivals.append(time.monotonic())
    assert len(arrivals) == 5 and arrivals[-1] - arrivals[0] > 0.6, "streamed, not buffered"
    connection.close()

    response, body = owner.request(host, "GET", "/big?mb=100")
    assert response.status == 200 and response.getheader("Content-Length") == str(100 << 20)
    expected = hashlib.sha256((bytes(range(256)) * 256) * 1600).hexdigest()
    assert hashlib.sha256(body).hexdigest() == expected

    upload = bytes(range(256)) * (80 * 1024 + 3)  # 20 MB and a bit
    response, body = owner.request(host, "POST", "/upload", {"Content-Type": "x/y"}, upload)
    assert json.loads(body) == {"length": len(upload), "sha256": hashlib.sha256(upload).hexdigest()}


def test_websockets_pass_text_and_binary_and_refuse_other_origins(owner):
    host = owner.host(8080, owner.name)

    async def talk():
        async with websockets.connect(
            f"ws://{host}/echo", host="127.0.0.1", port=owner.port, max_size=None,
            additional_headers={"Cookie": owner.cookies[host]}, origin=f"http://{host}",
        ) as socket:  # fmt: skip
            await socket.send("hello")
            assert await socket.recv() == "hello"
            await socket.send(b"\x00\xff" * 100_000)
            assert await socket.recv() == b"\x00\xff" * 100_000
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(
                f"ws://{host}/echo", host="127.0.0.1", port=owner.port,
                additional_headers={"Cookie": owner.cookies[host]},
                origin=f"http://3000--someone-else.localhost:{owner.port}",
            )  # fmt: skip
        assert refused.value.response.status_code == 403
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(f"ws://{host}/echo", host="127.0.0.1", port=owner.port)

    asyncio.run(talk())


def test_bad_addresses_and_ports_answer_pages_that_say_what_to_do(owner):
    response, body = owner.request(f"70000--{owner.name}.localhost:{owner.port}")
    assert response.status == 400 and b"a port from 1 to 65535" in body
    response, body = owner.request(f"not-a-preview.localhost:{owner.port}")
    assert response.status == 400 and b"Preview addresses look like" in body
    other = owner.host(9999, owner.name)
    owner.sign_in(other)
    response, body = owner.request(other)
    assert response.status == 502
    assert b"Nothing listens on 9999 in the box" in body
    assert b"Servers must listen on 127.0.0.1 or 0.0.0.0" in body
    ticketless = owner.request(owner.host(8080, owner.name), "GET",
                               "/__spoon/auth?ticket=forged&next=/x", cookie=False)  # fmt: skip
    assert ticketless[0].status == 404, "a forged ticket signs no one in"
    forged = owner.cookies[owner.host(8080, owner.name)].replace("=", "=x", 1)
    response, _ = owner.request(owner.host(8080, owner.name), cookie=False,
                                headers={"Cookie": forged})  # fmt: skip
    assert response.status == 302, "a tampered cookie signs in again"
    response, body = owner.request(
        owner.host(8080, owner.name), "POST", "/upload", body=b"x",
        headers={"Origin": f"http://3000--mallory.localhost:{owner.port}"},
    )  # fmt: skip
    assert response.status == 403 and b"another site" in body


def test_another_user_gets_404_until_shared_and_a_public_link_works_signed_out(owner, visitor):
    host = owner.host(8080, owner.name)
    other = visitor()
    response, body = other.sign_in(host)
    assert response.status == 404, "another user's private port: as if missing"
    response, missing_box = other.sign_in(other.host(8080, "nosuchbox"))
    assert response.status == 404

    status, shared = owner.spoon_api("PUT", "/api/previews/ports/8080", {"sharing": "users"})
    assert status == 200 and shared["sharing"] == "users" and shared["link"] == ""
    response, _ = other.sign_in(host)
    assert response.status == 302
    assert other.request(host, "GET", "/headers")[0].status == 200

    status, public = owner.spoon_api("PUT", "/api/previews/ports/8080", {"sharing": "public"})
    link = public["link"]
    assert link.startswith(f"http://{host}/__spoon/link#") and len(link.rsplit("#", 1)[1]) == 64
    token = link.rsplit("#", 1)[1]
    stranger = PreviewClient(owner)  # the same server, signed out
    response, page = stranger.request(host, "GET", "/__spoon/link")
    assert response.status == 200 and b"location.hash" in page, "the token stays in the fragment"
    response, _ = stranger.request(host, "POST", "/__spoon/link", body=token)
    assert response.status == 204
    stranger.cookies[host] = response.getheader("Set-Cookie").split(";")[0]
    assert stranger.request(host, "GET", "/headers")[0].status == 200
    assert token not in owner.server_log()

    status, renewed = owner.spoon_api("POST", "/api/previews/ports/8080/link")
    assert renewed["link"] != link
    # Decisions are kept DECISION_SECONDS (2 s): until then the old link still works.
    answered = until_status(stranger, host, 302)
    assert answered == 302, "the old link's visitors are out"
    response, body = stranger.request(host, "POST", "/__spoon/link", body=token, cookie=False)
    assert response.status == 404

    owner.spoon_api("PUT", "/api/previews/ports/8080", {"sharing": "private"})
    assert until_status(other, host, 404) == 404


def until_status(client, host: str, wanted: int) -> int:
    """GET /headers until it answers wanted; that status."""
    until(
        lambda: client.request(host, "GET", "/headers")[0].status == wanted,
        f"never answered {wanted}",
        timeout=30,
        every=0.2,
    )
    return wanted


def test_staff_have_no_preview_access_to_users_ports(owner, spoon_server):
    staff = PreviewClient(spoon_server)
    staff.name = f"s{uuid.uuid4().hex[:8]}"
    spoon_server.create_user(staff.name, PASSWORD, staff=True)
    staff.log_in(staff.name, PASSWORD)
    response, body = staff.sign_in(owner.host(8080, owner.name))
    assert response.status == 404 and b"No preview here" in body, "staff are users here"


def test_the_ports_list_names_what_listens_and_a_stopped_box_starts_on_a_visit(owner):
    status, listed = owner.spoon_api("GET", "/api/previews/ports/")
    assert status == 200 and listed["running"]
    (app,) = [p for p in listed["ports"] if p["port"] == 8080]
    assert app["process"] == "python3" and app["reachable"] and app["listening"]
    assert app["url"] == f"http://{owner.host(8080, owner.name)}/"
    assert app["sharing"] == "private"
    status, refused = owner.spoon_api("PUT", "/api/previews/ports/0", {"sharing": "public"})
    assert status == 400 and "1 to 65535" in refused["error"]
    status, refused = owner.spoon_api("PUT", "/api/previews/ports/80", {"sharing": "everyone"})
    assert status == 400 and refused["field"] == "sharing"

    docker_engine.stop_container(f"spoon-box-{owner.name}", timeout=1)
    host = owner.host(8080, owner.name)
    response, body = owner.request(host)
    if response.status == 503:  # it may come up within the wait
        assert b"Starting" in body and b'http-equiv="refresh"' in body
        assert response.getheader("Retry-After") == "2"
    response, body = owner.until_up(host)
    assert response.status == 502, "up again, and its app is gone with the stop"


@pytest.fixture
def nginx(spoon_server, tmp_path):
    """Debian's nginx in front of spoon_server, with the reference proxy
    lines; its port."""
    with reference_nginx(tmp_path, [spoon_server.port]) as port:
        yield port


def test_previews_work_behind_the_reference_nginx(owner, nginx, spoon_server):
    behind = PreviewClient(SimpleNamespace(port=nginx, log_path=spoon_server.log_path))
    behind.log_in(owner.name, PASSWORD)
    host = behind.host(8080, owner.name)
    response, _ = behind.sign_in(host)
    assert response.status == 302, "signed in through Spoon, behind nginx too"
    response, body = behind.request(host, "GET", "/headers")
    seen = json.loads(body)["headers"]
    assert response.status == 200 and seen["host"] == host and "x-forwarded-for" in seen

    connection = http.client.HTTPConnection("127.0.0.1", nginx, timeout=30)
    response = behind.send(connection, host, "GET", "/stream")
    arrivals = []
    while response.readline():
        arrivals.append(time.monotonic())
    assert arrivals[-1] - arrivals[0] > 0.6, "nginx passes a stream as it comes"
    connection.close()

    upload = bytes(range(256)) * (40 * 1024)  # 10 MB
    response, body = behind.request(host, "POST", "/upload", body=upload)
    assert json.loads(body)["sha256"] == hashlib.sha256(upload).hexdigest()

    async def echo():
        async with websockets.connect(
            f"ws://{host}/echo", host="127.0.0.1", port=nginx, origin=f"http://{host}",
            additional_headers={"Cookie": behind.cookies[host]},
        ) as socket:  # fmt: skip
            await socket.send("through nginx")
            return await socket.recv()

    assert asyncio.run(echo()) == "through nginx"


def test_the_reference_nginx_config_is_valid(tmp_path):
    """deploy/nginx/spoon.conf as an operator installs it, with a certificate
    at its paths: `nginx -t` takes it."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spoon.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp_path / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "privkey.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    )  # fmt: skip
    site = (REPO / "deploy/nginx/spoon.conf").read_text()
    site = site.replace("/etc/ssl/spoon/", f"{tmp_path}/")
    site = site.replace("/etc/nginx/spoon-proxy.conf", str(REPO / "deploy/nginx/spoon-proxy.conf"))
    (tmp_path / "spoon.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{ include {tmp_path}/spoon.conf; }}\n"
    )
    checked = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
         "-c", str(tmp_path / "nginx.conf")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def test_a_sign_in_never_goes_on_to_another_site(owner):
    for path in ("//evil.example/x", "/\\evil.example/x"):
        host = owner.host(9998, owner.name)
        owner.cookies.pop(host, None)
        response, _ = owner.sign_in(host, path)
        assert response.status == 302 and response.getheader("Location") == "/", path


def test_pythons_own_http_server_in_the_box_opens_as_a_preview(owner):
    """What a user types first: python3 -m http.server in their home."""
    from django.conf import settings

    serve = "cd ~ && echo from-the-home > hello.txt && setsid python3 -m http.server 8000"
    docker_engine.exec_run(
        f"spoon-box-{owner.name}", ["sh", "-c", f"{serve} >/dev/null 2>&1 &"],
        user=str(settings.SPOON_BOX_UID),
    )  # fmt: skip
    wait_listening(owner.name, 8000)
    host = owner.host(8000, owner.name)
    owner.sign_in(host)
    response, body = owner.until_up(host, "/hello.txt")
    assert response.status == 200 and body == b"from-the-home\n"
    response, body = owner.request(host, "GET", "/")
    assert response.status == 200 and b"hello.txt" in body, "its directory listing"
