"""What every request to Spoon's own pages passes (previews have their own).

Addresses and query strings with NUL characters are refused: no text column
of PostgreSQL's can hold one, so any lookup with them would fail as a 500.

Every answer carries the security headers. The Content-Security-Policy
lets the pages load only Spoon's own scripts, styles, fonts and sockets:
injected markup runs no script and sends nothing elsewhere. Styles may be
inline because xterm.js writes its own <style>."""

from django.http import HttpResponseBadRequest

from spoon.json_api import error, is_json_path

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PERMISSIONS = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


class RefuseNulCharacters:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            if is_json_path(request.path):
                return error("Addresses cannot contain NUL characters.", status=400)
            return HttpResponseBadRequest("Addresses cannot contain NUL characters.\n")
        return self.get_response(request)


class SecurityHeaders:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS)
        return response
