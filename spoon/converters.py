"""Path converters every app's URLs use."""

from django.urls import register_converter


class IdConverter:
    """A row's id in a URL: ASCII digits that fit a 64-bit column. Longer
    ones match no route (a 404), where <int:> would reach the database and
    overflow there (a 500)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)


def register() -> None:
    register_converter(IdConverter, "id")
