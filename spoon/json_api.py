"""What Spoon's JSON endpoints share: session auth answered as JSON (401, not
a login redirect), bodies read as JSON objects, and every refusal answered
as {"error": "...", "field": "..."}: a wrong method (405), a missing object
or another user's (404, alike), a failed CSRF check (403), an unknown
address under /api/ (404) and a server error (500) included."""

import json
from functools import wraps

from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse

# Paths whose every answer is JSON, errors included (see spoon.views).
JSON_PATHS = ("/api/", "/terminal/tickets/")


def error(message: str, field: str | None = None, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message, "field": field}, status=status)


def body(request) -> dict:
    """The request's JSON object. JSON over HTTP is UTF-8 (RFC 8259): bytes
    that are not, escapes of lone surrogates (text no database can store),
    nesting too deep and numbers too long to read are a body that is not JSON."""
    try:
        data = json.loads((request.body or b"{}").decode())
        json.dumps(data, ensure_ascii=False).encode()
    except (ValueError, RecursionError) as exc:  # UnicodeError and JSONDecodeError too
        raise json.JSONDecodeError("not JSON", "", 0) from exc
    if not isinstance(data, dict):
        raise json.JSONDecodeError("not an object", "", 0)
    return data


def is_json_path(path: str) -> bool:
    return path.startswith(JSON_PATHS)


def api(methods, field: str | None = None):
    """Logged-in users only; a body that is not JSON, and a ValidationError
    the view lets through, become JSON errors. The error names the
    exception's own `field` and `status` where its class sets them, else
    `field` and 400. Http404 (a missing object, or one of another user's:
    the same answer) becomes a JSON 404."""

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                refused = error(
                    f"{request.method} is not allowed here; use {' or '.join(methods)}.",
                    status=405,
                )
                refused["Allow"] = ", ".join(methods)
                return refused
            if not request.user.is_authenticated:
                return error("Log in first.", status=401)
            try:
                return view(request, *args, **kwargs)
            except json.JSONDecodeError:
                return error("The body must be JSON.", "body")
            except Http404:
                return error("Not found: there is no such thing here.", status=404)
            except ValidationError as exc:
                return error(
                    exc.messages[0], getattr(exc, "field", field), getattr(exc, "status", 400)
                )

        return wrapper

    return decorate
