"""A Django shell that stays: python -m tests.django_shell, with a Spoon
server's environment, reads one JSON string of Python code per line and
answers each with one JSON object, {"printed": ..., "error": ...}. Tests
reach a daphne's own database through it (SpoonServer.python) at the cost
of one Django start per server instead of one per call."""

import contextlib
import io
import json
import os
import sys
import traceback

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spoon.settings")


def main() -> None:
    import django

    django.setup()
    from django.db import connections

    answers = sys.stdout
    for line in sys.stdin:
        printed, error = io.StringIO(), ""
        try:
            with contextlib.redirect_stdout(printed):
                exec(json.loads(line), {})  # noqa: S102 - the tests' own code
        except BaseException:  # noqa: BLE001 - handed back to the test
            error = traceback.format_exc()
        finally:
            connections.close_all()  # as a process of its own would: nothing held
        answers.write(json.dumps({"printed": printed.getvalue(), "error": error}) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
