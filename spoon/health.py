"""What /healthz reports beside the engine (boxes.health): the database and
the channel layer, each {"ok", "error"} with the error as a sentence."""

import asyncio
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import DatabaseError, connection

LAYER_SECONDS = 3.0


def database_status() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return {"ok": False, "error": f"The database does not answer ({exc}): check DATABASE_URL."}
    return {"ok": True, "error": None}


def channel_layer_status() -> dict:
    """A message through the layer and back (with Redis: a round trip to it)."""
    layer = get_channel_layer()
    backend = type(layer).__name__
    try:
        async_to_sync(_round_trip)(layer)
    except Exception as exc:  # any failure of the layer is the answer
        return {"ok": False, "backend": backend, "error": (
            f"The channel layer ({backend}) does not answer ({type(exc).__name__}: {exc}): "
            "check REDIS_URL and that Redis runs.")}  # fmt: skip
    return {"ok": True, "backend": backend, "error": None}


async def _round_trip(layer) -> None:
    async with asyncio.timeout(LAYER_SECONDS):
        channel = await layer.new_channel(prefix="health")
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "health", "token": token})
        message = await layer.receive(channel)
    if message.get("token") != token:
        raise RuntimeError("a message came back changed")
