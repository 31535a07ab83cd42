"""What a preview request passes before it reaches the box, HTTP and
WebSocket alike: the visitor signed in and allowed, a page of the same box
when it acts, and the box up."""

import asyncio
import urllib.parse

from previews import access, hosts, pages, upstream
from previews.hosts import Target

START_WAIT = 1.5  # seconds a request waits for a stopped box before the "starting" page


def header(scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


async def respond(send, answer, extra_headers=()) -> None:
    status, headers, body = answer
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, *extra_headers]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def redirect(location: str, cookie: bytes | None = None):
    headers = [(b"location", location.encode()), (b"cache-control", b"no-store"),
               (b"content-length", b"0")]  # fmt: skip
    if cookie:
        headers.append((b"set-cookie", cookie))
    return 302, headers, b""


def from_same_box(scope, target: Target) -> bool:
    """A request a page of this box's previews made (or no page at all): a
    page of another box or site must not act with the visitor's cookie."""
    origin = header(scope, b"origin")
    if not origin:
        return True
    parsed = hosts.parse(urllib.parse.urlsplit(origin).netloc)
    return parsed is not None and parsed.box_name == target.box_name


async def admitted(scope, target: Target):
    """(the box, None) when the visitor may open this preview, else (None,
    the answer to give)."""
    scheme = scope.get("scheme", "http")
    if not target.box_name or target.port is None:
        return None, pages.bad_address(target.host)
    visitor = access.read_cookie(header(scope, b"cookie"), target, scheme)
    decision = access.kept_decision(visitor, target)
    verdict, box = decision or await asyncio.to_thread(access.decide, visitor, target)
    if verdict == access.ALLOW:
        return box, None
    if verdict == access.SIGN_IN and scope.get("method") in ("GET", "HEAD"):
        back = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            back += b"?" + scope["query_string"]
        query = urllib.parse.urlencode({"host": target.host, "next": back.decode("latin-1")})
        return None, redirect(f"{hosts.spoon_url(scheme, target)}/previews/open?{query}")
    return None, pages.missing(target.host)


async def held(target: Target, box) -> tuple[upstream.BoxHold | None, tuple | None]:
    """The box held and up, or the page to answer while it starts."""
    hold = upstream.hold(box)
    if not hold.ready.is_set():
        try:
            await asyncio.wait_for(asyncio.shield(hold.ready.wait()), START_WAIT)
        except TimeoutError:
            return None, pages.starting(target.host, target.box_name)
    if hold.error is not None:
        return None, pages.box_failed(target.host, str(hold.error))
    return hold, None
