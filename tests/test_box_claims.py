"""Claims: one slow change to a box at a time, and waiters that neither
give up on progress nor wait forever on a holder that died."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from boxes import lifecycle
from boxes.models import Box

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.both_databases]


@pytest.fixture
def box(make_user):
    return Box.objects.create(user=make_user(), username="claims")


def hold(box, token, seconds):
    Box.objects.filter(pk=box.pk).update(
        claimed_until=timezone.now() + timedelta(seconds=seconds), claim_token=token
    )


def test_a_claim_is_released_and_the_box_says_so(box):
    with lifecycle.claimed(box) as held:
        assert held.is_claimed()
        assert Box.objects.get(pk=box.pk).is_claimed()
    assert not held.is_claimed()
    assert not Box.objects.get(pk=box.pk).is_claimed()


def test_without_waiting_a_held_box_is_none(box):
    hold(box, "someone", 60)
    with lifecycle.claimed(box, wait=False) as held:
        assert held is None


def test_a_dead_holders_claim_lapses_and_a_waiter_takes_it(box):
    hold(box, "died", 0.5)
    started = time.monotonic()
    with lifecycle.claimed(box) as held:
        assert held.claim_token not in ("", "died")
    assert time.monotonic() - started >= 0.4


def test_a_waiter_gives_up_on_one_claim_held_too_long(box, monkeypatch):
    monkeypatch.setattr(lifecycle, "CLAIM_SECONDS", 0.5)
    hold(box, "stuck", 60)  # as a holder on a host whose clock runs ahead
    with pytest.raises(lifecycle.BoxError, match="stayed busy"):
        with lifecycle.claimed(box):
            pass


def test_a_waiter_waits_through_a_queue_of_holders(box, monkeypatch):
    """Each holder finishes within CLAIM_SECONDS; all of them together take
    longer. That is progress, not a stuck box."""
    monkeypatch.setattr(lifecycle, "CLAIM_SECONDS", 2)
    hold(box, "holder-0", 60)

    def pass_it_on():
        try:
            for n in range(1, 8):
                time.sleep(0.5)  # each well within CLAIM_SECONDS, on a busy machine too
                hold(box, f"holder-{n}", 60)
            time.sleep(0.5)  # the last holder's own time
            Box.objects.filter(pk=box.pk).update(claimed_until=None, claim_token="")
        finally:
            connections.close_all()

    queue = threading.Thread(target=pass_it_on)
    queue.start()
    started = time.monotonic()
    try:
        with lifecycle.claimed(box) as held:
            assert not held.claim_token.startswith("holder-")
    finally:
        queue.join()
    assert time.monotonic() - started >= 3.5, "longer than CLAIM_SECONDS, all together"
