"""A box held for previews: a preview lease while in use, which only traffic
keeps up; traffic is activity; the hold lets go once unused."""

import asyncio
import time

import pytest

from boxes import lifecycle
from boxes.models import Box, Lease
from previews import upstream
from tests.waits import until_async

pytestmark = pytest.mark.django_db(transaction=True)


def test_traffic_is_activity_and_an_unused_hold_lets_go(engine, make_user, settings, monkeypatch):
    settings.SPOON_ACTIVITY_WRITE_SECONDS = 0
    monkeypatch.setattr(upstream, "IDLE_SECONDS", 2)
    box = Box.objects.select_related("user").get(pk=lifecycle.ensure_box(make_user()).pk)

    def last_activity() -> float:
        return Box.objects.get(pk=box.pk).last_activity_at.timestamp()

    async def use() -> None:
        hold = upstream.hold(box)
        await hold.ready.wait()
        assert hold.error is None
        assert (
            await asyncio.to_thread(
                lambda: Lease.objects.filter(box=box, kind=Lease.Kind.PREVIEW).count()
            )
            == 1
        )
        before = time.time()
        hold.used()
        await until_async(  # written soon after, in a thread
            lambda: asyncio.to_thread(lambda: last_activity() >= before),
            "preview traffic is not activity",
        )
        await asyncio.wait_for(hold.task, 30)  # unused: it ends by itself

    asyncio.run(use())
    assert not Lease.objects.filter(box=box, kind=Lease.Kind.PREVIEW).exists(), "let go"
    assert Lease.Kind.PREVIEW in Lease.BY_TRAFFIC, "an open, silent preview keeps no box up"
