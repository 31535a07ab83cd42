"""What each test process keeps to itself when pytest-xdist runs several at
once against the one Docker Engine, PostgreSQL and Redis of the run:

- an installation id of its own (`SPOON_INSTANCE`), so its clean-ups and the
  reaper it calls touch only its own boxes;
- a Redis database of its own: run streams are grouped by row ids, and every
  worker's test database hands out the same ones;
- on PostgreSQL, a database of its own for the daphnes, gateways and
  commands it starts (the test database is pytest-django's, made per worker);
- names of its own for what tests make under a fixed name (suffix()).

A process that is not an xdist worker keeps the run's own id and services,
as a plain `pytest` always did. Every process forgets the SQLite files an
earlier run left beside its test database."""

import contextlib
import hashlib
import os
import urllib.parse

from django.conf import settings

from spoon.settings import redis_channel_layers

# Worker slots (gw0 to gw14): Redis keeps 16 databases, the first for a run
# without xdist. A finished run removes what any slot left.
SLOTS = 15


def worker() -> str:
    """gw0, gw1, ... in an xdist worker; "" otherwise."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")


def suffix() -> str:
    """What makes a fixed name (a user, a network, an image tag) this test
    process's own: a short hash of its installation id, which differs
    between workers and between test runs on other data folders."""
    return "-" + hashlib.sha256(settings.SPOON_INSTANCE.encode()).hexdigest()[:6]


def servers_instance(instance: str | None = None) -> str:
    """The installation id of the daphnes and gateways a test process starts
    on a database of their own: their boxes have no rows in the test
    database, and the reaper a test calls would take them for orphans."""
    return f"{instance or settings.SPOON_INSTANCE}-servers"


def instances(base: str) -> list[str]:
    """Every installation id a run on this data directory may have used."""
    ids = [base, *(f"{base}-gw{slot}" for slot in range(SLOTS))]
    return ids + [servers_instance(instance) for instance in ids]


def forget_stale_sqlite_files() -> None:
    """Remove the write-ahead log and shared-memory index an earlier run left
    beside this process's SQLite test database (pytest-django deletes the
    database file alone, while threads and daphnes may still hold it open).
    SQLite would replay that log into the new database of the same name, and
    fail later with "disk I/O error" or read another run's rows."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.sqlite3":
        return
    name = database.get("TEST", {}).get("NAME")
    if not name:
        return
    name = f"{name}_{worker()}" if worker() else name
    for leftover in (f"{name}-wal", f"{name}-shm", f"{name}-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)


def isolate() -> None:
    """Give this worker its own installation id, Redis database and server
    database; the environment carries them to the processes it starts."""
    forget_stale_sqlite_files()
    if not worker():
        return
    settings.SPOON_INSTANCE = os.environ["SPOON_INSTANCE"] = f"{settings.SPOON_INSTANCE}-{worker()}"
    slot = int(worker().removeprefix("gw"))
    if settings.REDIS_URL:
        url = _with_path(settings.REDIS_URL, f"/{slot + 1}")
        settings.REDIS_URL = os.environ["REDIS_URL"] = url
        settings.CHANNEL_LAYERS = redis_channel_layers(url)
    database = os.environ.get("DATABASE_URL", "")
    if database.startswith(("postgres://", "postgresql://")):
        os.environ["DATABASE_URL"] = _fresh_postgres_database(database, worker())


def _with_path(url: str, path: str) -> str:
    return urllib.parse.urlsplit(url)._replace(path=path).geturl()


def _fresh_postgres_database(url: str, name: str) -> str:
    """An empty database named after the run's one and this worker; its URL."""
    import psycopg

    parts = urllib.parse.urlsplit(url)
    database = f"{parts.path.lstrip('/')}_{name}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{database}"')
    return _with_path(url, f"/{database}")
