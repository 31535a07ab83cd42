"""A throwaway Spoon for a benchmark: its own data directory and installation
id (so it never touches a real Spoon's boxes), boxes without a network."""

import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def start(**environment) -> tuple[str, str]:
    """Set Django up in a fresh data directory; returns (data dir, instance id)."""
    data_dir = tempfile.mkdtemp(prefix="spoon-bench-")
    instance = f"bench-{uuid.uuid4().hex[:8]}"
    os.environ.update(
        {
            # A database of its own too, unless the benchmark names one: a
            # shared one holds other runs' boxes, which a reap would count.
            "DATABASE_URL": f"sqlite:///{data_dir}/db.sqlite3",
            "SPOON_DATA_DIR": data_dir,
            "SPOON_INSTANCE": instance,
            "SPOON_BOX_NETWORK": "none",
            # No dotfiles apply on a box start unless a benchmark asks: its
            # thread ensures the box again, and could bring one back after
            # the benchmark removed it (seen under load).
            "SPOON_DOTFILES_APPLY_ON_START": "false",
            "DJANGO_SETTINGS_MODULE": "spoon.settings",
            **environment,
        }
    )
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from boxes import images

    images.ensure_images(log=lambda line: None)  # figures of the images in this checkout
    return data_dir, instance


def finish(data_dir: str, instance: str) -> None:
    """Remove every container and volume the benchmark made, and its data."""
    from boxes import docker_engine

    docker_engine.remove_labeled(f"spoon.instance={instance}")
    shutil.rmtree(data_dir, ignore_errors=True)


def percentile(values, share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def print_table(heads: tuple, rows: list[tuple]) -> None:
    """Rows of cells under their heads, in columns as wide as their widest."""
    widths = [max(len(row[i]) for row in [heads, *rows]) for i in range(len(heads))]
    print(" | ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
