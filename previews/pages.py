"""The pages a preview host answers itself, each saying what to do."""

from django.template.loader import render_to_string


def page(
    status: int, title: str, message: str, host: str, hint: str = "", reload: int = 0,
    script: bool = False,
):  # fmt: skip
    """(status, headers, body) of a small HTML page."""
    context = {"title": title, "message": message, "hint": hint, "host": host, "reload": reload,
               "script": script}  # fmt: skip
    body = render_to_string("previews/page.html", context).encode()
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
    ]
    if reload:
        headers.append((b"retry-after", str(reload).encode()))
    return status, headers, body


def missing(host: str):
    """No such box, or not yours to open: the same page either way."""
    return page(
        404,
        "No preview here",
        "There is no box by this name, or its port is not shared with you.",
        host,
        "Check the address; if someone shared it with you, ask them for the link again.",
    )


def bad_address(host: str):
    return page(
        400,
        "Not a preview address",
        "Preview addresses look like <port>--<box>.<domain>, with a port from 1 to 65535, "
        "such as 8080--alice.localhost.",
        host,
    )


def nothing_listens(host: str, port: int):
    return page(
        502,
        f"Nothing listens on {port}",
        f"Nothing listens on {port} in the box. Start the server: this page reloads itself "
        "every few seconds and shows it once it answers.",
        host,
        "Servers must listen on 127.0.0.1 or 0.0.0.0 (or ::1) in the box, such as "
        f"python3 -m http.server {port} or npm run dev -- --port {port}.",
        reload=5,
    )


def starting(host: str, box_name: str):
    return page(
        503,
        f"Starting {box_name}'s box…",
        "The box was stopped; it is starting now. This page reloads itself until it is up.",
        host,
        reload=2,
    )


def box_failed(host: str, reason: str):
    return page(503, "The box could not start", reason, host, "Try again in a moment.", reload=10)


def too_many_tickets(host: str, reason: str):
    return page(429, "Too many sign-ins", reason, host, "This page reloads itself.", reload=30)


def foreign_origin(host: str):
    return page(
        403,
        "Refused: another site's request",
        "A page of another site or box asked this preview to change something on your behalf.",
        host,
    )


def no_answer(host: str, port: int):
    return page(
        502,
        "No answer",
        f"The server on {port} in the box closed the connection without answering.",
        host,
        "Its own output (in your terminal) may say why; reload to try again.",
    )


def link_page(host: str):
    """A public link's page: it posts the token from the fragment, then opens the preview."""
    return page(200, "Opening the preview…", "Signing this browser in to a shared preview.",
                host, script=True)  # fmt: skip
