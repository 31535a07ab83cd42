"""What every WebSocket into Spoon shares, whatever it carries: who may
connect (the page's own origin, port included), what an unknown address
gets (a quiet refusal), and what an error inside a consumer does (ends that
one connection and lets go of everything it held)."""

import asyncio
import contextlib
import logging
import urllib.parse

from channels.exceptions import StopConsumer
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from previews.gate import header

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": "80", "https": "443"}
INTERNAL_ERROR = 1011


def _host_and_port(netloc: str, scheme: str) -> tuple[str, str]:
    host, port = split_domain_port(netloc.lower())
    return host, port or DEFAULT_PORTS.get(scheme, "")


def same_origin(origin: str | None, host_header: str | None) -> bool:
    """The page that opens the socket is one of ours: its Origin names the
    host and port the socket was opened to (a site on another port of the
    same host is another origin), or is a trusted origin, as Django's CSRF
    check has it; and the host is one Spoon answers to."""
    if not origin or not host_header:
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parsed = urllib.parse.urlsplit(origin)
    if parsed.scheme not in DEFAULT_PORTS or not parsed.netloc:
        return False
    origin_host = _host_and_port(parsed.netloc, parsed.scheme)
    if not origin_host[0] or not validate_host(origin_host[0], settings.ALLOWED_HOSTS):
        return False
    return origin_host == _host_and_port(host_header, parsed.scheme)


def _ended_by(scope, error: Exception) -> None:
    """One line, no traceback: anyone can make a connection fail."""
    logger.error("%s: connection ended by %s: %s", scope.get("path"), type(error).__name__,
                 str(error)[:200])  # fmt: skip


class SameOriginOnly:
    """A foreign Origin never connects: the session cookie alone would not stop
    cross-site WebSocket hijacking. Refused before the handshake (403)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if same_origin(header(scope, b"origin"), header(scope, b"host")):
            return await self.app(scope, receive, send)
        logger.info("%s: WebSocket from a foreign origin refused", scope.get("path"))
        return await WebsocketDenier()(scope, receive, send)


class NoSuchSocket(WebsocketDenier):
    """Any address no socket lives at: refused before the handshake, with a
    line in the log but no traceback (anyone could send them by the
    thousand)."""

    async def connect(self):
        logger.info("%s: no WebSocket here", self.scope.get("path"))
        await self.close()


class EndsCleanly:
    """Mixed into a WebSocket consumer: an error while it handles a frame ends
    that one connection (closed with 1011, one line in the log) and calls
    disconnect(), so the consumer lets go of what it holds (tasks, leases,
    execs, groups) as if the client had gone. disconnect() must therefore
    be safe to call twice. A consumer with its own receive loop overrides
    converse()."""

    disconnected = False

    async def __call__(self, scope, receive, send):
        try:
            await self.converse(scope, receive, send)
        except StopConsumer:
            pass
        except Exception as exc:
            _ended_by(scope, exc)
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": INTERNAL_ERROR})
        finally:
            if not self.disconnected:
                self.disconnected = True
                try:
                    await self.disconnect(INTERNAL_ERROR)
                except Exception:
                    logger.exception("%s: letting go after an error failed", scope.get("path"))

    def background(self, work) -> asyncio.Task:
        """A task of this connection's: an error in it ends the connection
        as one in a handler does (1011, a line in the log)."""

        async def ended_by_errors():
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _ended_by(self.scope, exc)
                await self.close(code=INTERNAL_ERROR)

        return asyncio.create_task(ended_by_errors())

    async def converse(self, scope, receive, send):
        await super().__call__(scope, receive, send)

    async def websocket_disconnect(self, message):
        self.disconnected = True
        await super().websocket_disconnect(message)
