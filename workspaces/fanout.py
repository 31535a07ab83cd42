"""A run's news (new output, a new status) sent to the pages that follow it,
through the channel layer: a group per run, so a page on one daphne process
sees a run carried out by another live. The database stays the record: a
follower reads it first, and again after a gap or a quiet while, so a lost
message costs a read, never output.

With the in-memory layer (one process, SQLite) nothing is sent and followers
read the database: that layer's queues belong to the event loop that made
them, and a run is carried out on a loop of its own."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "run.news"  # handled by RunStreamConsumer.run_news


def group(run_id: int) -> str:
    return f"run-{run_id}"


def available() -> bool:
    layer = get_channel_layer()
    return layer is not None and not isinstance(layer, InMemoryChannelLayer)


def publish(run_id: int, **news) -> None:
    """Tell the run's followers; from any thread but an event loop's."""
    if not available():
        return
    try:
        async_to_sync(get_channel_layer().group_send)(group(run_id), {"type": MESSAGE_TYPE, **news})
    except Exception:  # the followers read the database instead
        logger.warning("telling the followers of run %s failed", run_id, exc_info=True)
