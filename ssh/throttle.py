"""Failed SSH logins per source address: past FAILURES in WINDOW seconds, an
address is refused until its failures age out. In memory: one gateway
process serves every SSH connection."""

import time
from collections import defaultdict, deque

FAILURES = 20  # a client offers each key of its agent in turn: some are wrong
WINDOW = 60.0

_failures: dict[str, deque[float]] = defaultdict(deque)


def _recent(address: str) -> deque[float]:
    failures = _failures[address]
    while failures and time.monotonic() - failures[0] > WINDOW:
        failures.popleft()
    if not failures:
        del _failures[address]
    return failures


def refused(address: str) -> bool:
    return len(_recent(address)) >= FAILURES


def failed(address: str) -> None:
    _recent(address)
    _failures[address].append(time.monotonic())
