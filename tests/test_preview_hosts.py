"""Preview host names and the preview cookie, without a server."""

import json
import subprocess

import pytest

from previews import access, hosts
from previews.hosts import Target
from tests.support import REPO


@pytest.mark.parametrize(
    "host, expected",
    [("localhost:8000", None), ("127.0.0.1:8000", None), ("spoon.example.com", None),
     ("8080--alice.localhost:8000", Target("8080--alice.localhost:8000", 8080, "alice")),
     ("8080--Alice.LOCALHOST", Target("8080--alice.localhost", 8080, "alice")),
     ("70000--alice.localhost", Target("70000--alice.localhost", None, "alice")),
     ("0--alice.localhost", Target("0--alice.localhost", None, "alice")),
     ("www.localhost", Target("www.localhost", None, "")),
     ("8080--a.b.localhost", Target("8080--a.b.localhost", None, "")),
     ("8080-alice.localhost", Target("8080-alice.localhost", None, ""))],
)  # fmt: skip
def test_preview_hosts(host, expected):
    assert hosts.parse(host) == expected


def test_an_empty_domain_turns_previews_off(settings):
    settings.SPOON_PREVIEW_DOMAIN = ""
    assert hosts.parse("8080--alice.localhost:8000") is None


def test_addresses_built_on_spoons_pages(settings):
    assert hosts.base_url("http", "localhost:8000", 8080, "alice") == (
        "http://8080--alice.localhost:8000"
    )
    settings.SPOON_PREVIEW_DOMAIN = "spoon.example.com"
    assert hosts.base_url("https", "spoon.example.com", 5173, "bo") == (
        "https://5173--bo.spoon.example.com"
    )
    target = hosts.parse("5173--bo.spoon.example.com")
    assert hosts.spoon_url("https", target) == "https://spoon.example.com"
    settings.SPOON_URL = "https://spoon.example.org"
    assert hosts.spoon_url("https", target) == "https://spoon.example.org"


def test_a_cookie_holds_for_its_own_host_only():
    target = hosts.parse("8080--alice.localhost:8000")
    other = hosts.parse("8081--alice.localhost:8000")
    cookie = access.set_cookie(target, access.Visitor(user_id=7), "http").decode()
    assert "HttpOnly" in cookie and "Domain" not in cookie and "Secure" not in cookie
    pair = cookie.split(";")[0]
    assert access.read_cookie(pair, target, "http") == access.Visitor(user_id=7)
    assert access.read_cookie(pair, other, "http") == access.NOBODY
    assert access.read_cookie(pair.replace("=", "=x", 1), target, "http") == access.NOBODY
    secure = access.set_cookie(target, access.Visitor(user_id=7), "https").decode()
    assert secure.startswith("__Host-spoon_preview=") and "; Secure" in secure
    assert access.without_our_cookie(f"a=1; {pair}; b=2", "http") == "a=1; b=2"


def test_the_terminals_links_to_a_server_in_the_box_become_its_preview_links():
    """frontend/src/previews.js's previewOf, as the terminal's link handler uses it."""
    addresses = [
        "http://localhost:8080/x", "http://127.0.0.1:3000", "http://0.0.0.0:8080/",
        "http://[::1]:5173/a?b", "https://example.com/", "http://10.0.0.2:8080/",
    ]  # fmt: skip
    script = (
        'import { previewOf } from "./frontend/src/previews.js";'
        f"const addresses = {json.dumps(addresses)};"
        'console.log(JSON.stringify(addresses.map((a) => previewOf(a, "http://{port}--al.localhost:8000"))));'
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(done.stdout) == [
        "http://8080--al.localhost:8000/x", "http://3000--al.localhost:8000/",
        "http://8080--al.localhost:8000/", "http://5173--al.localhost:8000/a?b", None, None,
    ]  # fmt: skip


@pytest.mark.both_databases
@pytest.mark.django_db
def test_a_sign_in_ticket_signs_in_once_on_its_own_host_only(django_user_model):
    from datetime import timedelta

    from django.utils import timezone

    from previews.models import SpentTicket

    user = django_user_model.objects.create_user("ticketed")
    here = Target("8080--ticketed.localhost:8000", 8080, "ticketed")
    elsewhere = Target("3000--ticketed.localhost:8000", 3000, "ticketed")
    ticket = access.issue_ticket(user, here)
    assert access.redeem_ticket(ticket, elsewhere) is None, "another host's"
    assert access.redeem_ticket(ticket, here).user_id == user.pk
    assert access.redeem_ticket(ticket, here) is None, "spent"

    SpentTicket.objects.update(spent_at=timezone.now() - timedelta(seconds=3 * 60))
    access.redeem_ticket(access.issue_ticket(user, here), here)
    assert SpentTicket.objects.count() == 1, "nonces no ticket could use any more are pruned"


@pytest.mark.both_databases
@pytest.mark.django_db
def test_preview_sign_ins_count_among_a_users_tickets(client, make_user, settings):
    from boxes import lifecycle
    from tests import reliability

    settings.SPOON_TICKETS_PER_MINUTE = 3
    user = make_user()
    client.force_login(user)
    host = f"8080--{lifecycle.box_for(user).username}.localhost"
    answers = [client.get("/previews/open", {"host": host}) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [302, 302, 302, 429]
    refused = answers[-1]
    assert b"You asked for 3 tickets within a minute" in refused.content
    assert refused["Retry-After"] == "30"
    assert client.post("/terminal/tickets/").status_code == 429, "one count for every kind"
    reliability.limit(
        "preview sign-ins", "counted with the WebSocket tickets (`SPOON_TICKETS_PER_MINUTE`)",
        "429, a page with the sentence, Retry-After",
    )  # fmt: skip
