"""What Spoon's JSON endpoints share: session auth answered as JSON (401, not
a login redirect), bodies read as JSON objects, and refusals answered as
{"error": "...", "field": "..."}."""

import json
from functools import wraps

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.views.decorators.http import require_http_methods


def error(message: str, field: str | None = None, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message, "field": field}, status=status)


def body(request) -> dict:
    data = json.loads(request.body or b"{}")
    if not isinstance(data, dict):
        raise json.JSONDecodeError("not an object", "", 0)
    return data


def api(methods, field: str | None = None):
    """Logged-in users only; a body that is not JSON, and a ValidationError
    the view lets through, become JSON errors. The error names the
    exception's own `field` and `status` where its class sets them, else
    `field` and 400."""

    def decorate(view):
        @require_http_methods(methods)
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return error("Log in first.", status=401)
            try:
                return view(request, *args, **kwargs)
            except json.JSONDecodeError:
                return error("The body must be JSON.", "body")
            except ValidationError as exc:
                return error(
                    exc.messages[0], getattr(exc, "field", field), getattr(exc, "status", 400)
                )

        return wrapper

    return decorate
