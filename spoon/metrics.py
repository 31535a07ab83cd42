"""Prometheus metrics, all named spoon_*: what each process counts as it
happens (engine calls, reap passes, runs and applies that end) and what the
database says now (boxes, leases, terminals, runs, applies), served at
/metrics in the text format.

Several processes (two daphnes, the reaper) add up their counts when they
share PROMETHEUS_MULTIPROC_DIR, prometheus-client's own multiprocess mode;
without it, each process answers with its own counts. What the database says
is the same whichever process answers.
"""

import os
import time
from contextlib import contextmanager

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

# The *_created series double every counter's lines and tell nobody anything here.
disable_created_metrics()

# Engine calls last milliseconds; an image build or a slow stop, minutes.
ENGINE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# A command takes seconds; an agent turn, up to an hour.
WORK_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)

engine_calls = Counter("spoon_engine_calls", "Docker API calls made", ["call"])
engine_errors = Counter(
    "spoon_engine_errors", "Docker API calls that failed, by what failed", ["call", "error"]
)
engine_seconds = Histogram(
    "spoon_engine_call_seconds", "How long Docker API calls took", ["call"], buckets=ENGINE_BUCKETS
)
reap_passes = Counter("spoon_reap_passes", "reapboxes passes made")
reap_seconds = Histogram("spoon_reap_pass_seconds", "How long a reapboxes pass took")
reap_stopped = Counter("spoon_reap_boxes_stopped", "Idle boxes stopped by reapboxes")
reap_failures = Counter(
    "spoon_reap_failures", "Boxes reapboxes could not stop or check, and passes that failed whole"
)
carried_on = Counter(
    "spoon_carried_on",
    "Runs and dotfiles applies taken over after the process carrying them stopped, by kind",
    ["kind"],
)
run_seconds = Histogram(
    "spoon_run_duration_seconds",
    "How long finished runs took, by kind (command or agent) and status",
    ["kind", "status"],
    buckets=WORK_BUCKETS,
)
apply_seconds = Histogram(
    "spoon_dotfiles_apply_duration_seconds",
    "How long finished dotfiles applies took, by status",
    ["status"],
    buckets=WORK_BUCKETS,
)


def call_name(fn) -> str:
    """A bounded label for a docker-py callable: the low-level API's own
    method name (inspect_container), a collection's with its class
    (ImageCollection.get), the caller's name for a lambda (version)."""
    name = getattr(fn, "__qualname__", "call").split(".<locals>")[0]
    return name.rsplit(".", 1)[-1] if "ApiMixin." in name or "APIClient." in name else name


@contextmanager
def engine_call(name: str):
    started = time.perf_counter()
    engine_calls.labels(name).inc()
    try:
        yield
    except Exception as exc:
        engine_errors.labels(name, type(exc).__name__).inc()
        raise
    finally:
        engine_seconds.labels(name).observe(time.perf_counter() - started)


class DatabaseState:
    """Gauges read from the database at each scrape, so every process gives
    the same answer."""

    def describe(self):
        return []

    def collect(self):
        # Imported here: apps import this module while the app registry loads.
        from django.db.models import Count

        from boxes.models import Box, Lease
        from dotfiles.models import DotfilesRun
        from workspaces.models import Run

        yield _by(
            "spoon_boxes", "Boxes by recorded state", "state",
            Box.objects.values_list("state").annotate(n=Count("pk")), Box.State.values,
        )  # fmt: skip
        live = Lease.objects.live()
        yield _by(
            "spoon_leases", "Live leases by kind", "kind",
            live.values_list("kind").annotate(n=Count("pk")), Lease.Kind.values,
        )  # fmt: skip
        TERMINAL_KINDS = (Lease.Kind.TERMINAL, Lease.Kind.STAFF)  # noqa: N806
        terminals = GaugeMetricFamily("spoon_terminals_open", "Terminals connected now")
        terminals.add_metric([], live.filter(kind__in=TERMINAL_KINDS).count())
        yield terminals
        yield _by(
            "spoon_runs", "Runs by status", "status",
            Run.objects.values_list("status").annotate(n=Count("pk")), Run.Status.values,
        )  # fmt: skip
        yield _by(
            "spoon_dotfiles_applies", "Dotfiles applies by status", "status",
            DotfilesRun.objects.values_list("status").annotate(n=Count("pk")),
            DotfilesRun.Status.values,
        )  # fmt: skip


def _by(name, documentation, label, counted, every) -> GaugeMetricFamily:
    """One gauge per value of `label`, zero for those with no rows."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    found = dict(counted.order_by())
    for value in every:
        family.add_metric([value], found.get(value, 0))
    return family


def exposition(accept: str = "") -> tuple[bytes, str]:
    """The metrics page in the format the scraper asks for (its Accept
    header), and that format's content type."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseState())
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


class _ThisProcess:
    """The default registry's metrics (ours and the process's own), read
    through a registry of this scrape's."""

    def describe(self):
        return []

    def collect(self):
        return REGISTRY.collect()
