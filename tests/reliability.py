"""The record behind docs/reliability.md: tests say what they tried (bad
inputs and how many), which faults they survived and which limits they hit,
and a whole passing run of the suite writes the page (tests/conftest.py), so
the page says what the tests do, not what someone remembers them doing.

xdist workers hand their records to the controller (merge). scripts/test
runs the suite in passes (one per database set-up, and the engine restarts
on their own): each keeps its record in a file, and the page is written from
all of them once every pass is green:

    python -m tests.reliability RECORD_FILE
"""

import json
import os
import sys
from collections import defaultdict
from pathlib import Path

PAGE = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"

_inputs: dict[tuple[str, str], int] = defaultdict(int)
_faults: dict[str, tuple[str, str]] = {}
_limits: dict[str, tuple[str, str, str]] = {}


def tried(kind: str, where: str, count: int) -> None:
    """count bad inputs of a kind were sent to `where`, and none broke it."""
    _inputs[(kind, where)] += count


def _current_test() -> str:
    """The test that is running, as tests/test_x.py::test_y."""
    return os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0].removeprefix("tests/")


def survived(fault: str, user_sees: str, recorded: str) -> None:
    _faults[fault] = (user_sees, recorded, _current_test())


def limit(name: str, value: str, past_it: str) -> None:
    _limits[name] = (value, past_it, _current_test())


def record() -> dict:
    """This process's record, as JSON can carry it."""
    return {
        "inputs": [[kind, where, count] for (kind, where), count in _inputs.items()],
        "faults": _faults,
        "limits": _limits,
    }


def merge(other: dict, combine=lambda mine, theirs: mine + theirs) -> None:
    """Add another process's record to this one: inputs counted in both
    are added up (workers of one pass sent different ones)."""
    for kind, where, count in other.get("inputs", []):
        key = (kind, where)
        _inputs[key] = combine(_inputs[key], count) if key in _inputs else count
    _faults.update({fault: tuple(row) for fault, row in other.get("faults", {}).items()})
    _limits.update({name: tuple(row) for name, row in other.get("limits", {}).items()})


def keep(path: Path) -> None:
    """Append this pass's record to the file of a run's passes."""
    with path.open("a") as kept:
        kept.write(json.dumps(record()) + "\n")


def write_from(path: Path) -> bool:
    """Write the page from every pass kept in path. A pass that repeats
    another's inputs on another database counts them once."""
    for line in path.read_text().splitlines():
        merge(json.loads(line), combine=max)
    return write()


def anything() -> bool:
    return bool(_inputs or _faults or _limits)


def page() -> str:
    lines = [
        "# Reliability: what the test suite breaks on purpose",
        "",
        "Written by a passing run of the whole suite (`scripts/test`) from what the",
        "tests themselves record (`tests/reliability.py`); do not edit by hand.",
        "",
        "## Faults survived",
        "",
        "| fault | what the user sees | what is recorded | test |",
        "| --- | --- | --- | --- |",
    ]
    for fault, (sees, recorded, test) in sorted(_faults.items()):
        lines.append(f"| {fault} | {sees} | {recorded} | `{test}` |")
    lines += [
        "",
        "## Bad inputs tried",
        "",
        "Every one answered 4xx (or was ignored, for frames), with no 500 and no",
        "traceback in the log.",
        "",
        "| kind | where | inputs |",
        "| --- | --- | ---: |",
    ]
    for (kind, where), count in sorted(_inputs.items()):
        lines.append(f"| {kind} | `{where}` | {count} |")
    total = sum(_inputs.values())
    lines += [f"| **all** | | **{total}** |", "", "## Limits", ""]
    lines += ["| limit | value | past it | test |", "| --- | --- | --- | --- |"]
    for name, (value, past_it, test) in sorted(_limits.items()):
        lines.append(f"| {name} | {value} | {past_it} | `{test}` |")
    return "\n".join(lines) + "\n"


def write() -> bool:
    """Write the page; whether it changed (then it wants committing)."""
    text = page()
    if PAGE.exists() and PAGE.read_text() == text:
        return False
    PAGE.write_text(text)
    return True


if __name__ == "__main__":
    changed = write_from(Path(sys.argv[1]))
    print(f"docs/{PAGE.name} {'changed: commit it with this change' if changed else 'unchanged'}")
