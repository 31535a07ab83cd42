"""The preview layer in front of Spoon (spoon/asgi.py): a request to a preview
host never reaches Django. It is signed in (previews.access), then relayed
to the port in the box (previews.upstream) as HTTP/1.1, unchanged but for
the hop-by-hop headers and Spoon's own preview cookie: methods, streaming
and chunked bodies, uploads and downloads of any size. WebSockets:
previews.sockets."""

import asyncio
import logging
import urllib.parse

import h11

from boxes import docker_engine
from previews import access, hosts, pages, sockets, upstream
from previews.gate import admitted, from_same_box, header, held, redirect, respond
from previews.hosts import Target

logger = logging.getLogger(__name__)

HOP_BY_HOP = {
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization",
    b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade",
}  # fmt: skip
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class PreviewHosts:
    """Routes preview hosts to the previews, everything else to Spoon."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            target = hosts.parse(header(scope, b"host"))
            if target is not None:
                serve = serve_http if scope["type"] == "http" else sockets.serve_websocket
                return await serve(scope, receive, send, target)
        return await self.app(scope, receive, send)


async def serve_http(scope, receive, send, target: Target) -> None:
    if scope["path"].startswith("/__spoon/"):
        return await serve_sign_in(scope, receive, send, target)
    box, refusal = await admitted(scope, target)
    if refusal:
        return await respond(send, refusal)
    if scope["method"] not in SAFE_METHODS and not from_same_box(scope, target):
        return await respond(send, pages.foreign_origin(target.host))
    hold, waiting = await held(target, box)
    if waiting:
        return await respond(send, waiting)
    hold.busy += 1
    try:
        await relay_http(scope, receive, send, target, hold)
    finally:
        hold.busy -= 1
        hold.used()


async def serve_sign_in(scope, receive, send, target: Target) -> None:
    """/__spoon/auth?ticket=…&next=… (from Spoon) sets this host's cookie and
    goes on. A public link is /__spoon/link#<token>: the token stays in the
    fragment, out of every access log, and the page posts it here."""
    scheme = scope.get("scheme", "http")
    query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
    visitor, back = None, query.get("next", ["/"])[0]
    if scope["path"] == "/__spoon/auth":
        ticket = query.get("ticket", [""])[0]
        visitor = await asyncio.to_thread(access.redeem_ticket, ticket, target)
    elif scope["path"] == "/__spoon/link" and target.port is not None:
        if scope["method"] != "POST":
            return await respond(send, pages.link_page(target.host))
        token = (await receive()).get("body", b"").decode("latin-1").strip()
        visitor = await asyncio.to_thread(access.redeem_link, token, target)
        if visitor is not None:
            cookie = access.set_cookie(target, visitor, scheme)
            return await respond(send, (204, [(b"cache-control", b"no-store")], b""),
                                 [(b"set-cookie", cookie)])  # fmt: skip
    if visitor is None:
        return await respond(send, pages.missing(target.host))
    if not back.startswith("/") or back[1:2] in ("/", "\\"):  # never to another site
        back = "/"
    await respond(send, redirect(back, access.set_cookie(target, visitor, scheme)))


def upstream_request(scope, target: Target) -> h11.Request:
    scheme = scope.get("scheme", "http")
    headers = []
    for name, value in scope["headers"]:
        lower = name.lower()
        if lower in HOP_BY_HOP and lower != b"transfer-encoding":
            continue
        if lower == b"cookie":
            value = access.without_our_cookie(value.decode("latin-1"), scheme).encode("latin-1")
            if not value:
                continue
        headers.append((name, value))
    client = scope.get("client") or ("", 0)
    headers += [
        (b"x-forwarded-proto", scheme.encode()),
        (b"x-forwarded-host", target.host.encode()),
        (b"x-forwarded-for", (client[0] or "").encode()),
    ]
    path = scope.get("raw_path") or urllib.parse.quote(scope["path"]).encode()
    if scope.get("query_string"):
        path += b"?" + scope["query_string"]
    return h11.Request(method=scope["method"], target=path, headers=headers)


class Unanswered(Exception):
    """The server closed the connection before answering."""


async def next_event(conn: h11.Connection, relay: upstream.Connection):
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise Unanswered(str(exc)) from exc
        if event is h11.NEED_DATA:
            conn.receive_data(await relay.read())
            continue
        if isinstance(event, h11.ConnectionClosed):
            raise Unanswered("closed")
        return event


async def relay_http(scope, receive, send, target: Target, hold: upstream.BoxHold) -> None:
    first = await receive()
    body, more = first.get("body", b""), first.get("more_body", False)
    request = upstream_request(scope, target)
    for attempt in (1, 2):
        try:
            relay, reused = await hold.connection(target.port)
        except docker_engine.EngineError as exc:
            logger.info("previews: %s went away: %s", target.box_name, exc)
            hold.broken()
            return await respond(send, pages.starting(target.host, target.box_name))
        conn = h11.Connection(h11.CLIENT)
        try:
            relay.write(conn.send(request))
            if body:
                relay.write(conn.send(h11.Data(data=body)))
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    relay.close()
                    return
                more = message.get("more_body", False)
                if message.get("body"):
                    relay.write(conn.send(h11.Data(data=message["body"])))
                    await relay.drain()
            relay.write(conn.send(h11.EndOfMessage()))
            await relay.drain()
            response = await next_event(conn, relay)
            while isinstance(response, h11.InformationalResponse):
                response = await next_event(conn, relay)
            break
        except upstream.NothingListens:
            relay.close()
            return await respond(send, pages.nothing_listens(target.host, target.port))
        except (Unanswered, ConnectionError) as exc:
            relay.close()
            # A kept connection the server had closed meanwhile: once more on a new one.
            if reused and attempt == 1 and not first.get("more_body"):
                continue
            logger.info("previews: %s:%s gave no answer: %s", target.box_name, target.port, exc)
            return await respond(send, pages.no_answer(target.host, target.port))
    headers = [(k, v) for k, v in response.headers if k.lower() not in HOP_BY_HOP]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    streaming = asyncio.create_task(stream_body(send, conn, relay, hold))
    gone = asyncio.create_task(disconnected(receive))
    await asyncio.wait({streaming, gone}, return_when=asyncio.FIRST_COMPLETED)
    gone.cancel()
    if not streaming.done():  # the visitor left: the rest is not wanted
        streaming.cancel()
        relay.close()
        return
    if (
        streaming.exception() is None
        and conn.our_state is h11.DONE
        and (conn.their_state is h11.DONE)
    ):
        hold.give_back(target.port, relay)
    else:
        relay.close()


async def stream_body(send, conn: h11.Connection, relay: upstream.Connection, hold) -> None:
    try:
        while True:
            event = await next_event(conn, relay)
            if isinstance(event, h11.Data):
                hold.used()
                await send({"type": "http.response.body", "body": bytes(event.data),
                            "more_body": True})  # fmt: skip
            elif isinstance(event, h11.EndOfMessage):
                break
    except (Unanswered, ConnectionError, upstream.NothingListens):
        pass  # cut off: the visitor gets what came
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
