"""The ordered outbox the PostgreSQL and Redis buses send through."""

from __future__ import annotations

import asyncio
import logging

import pytest

from workeros.bus.outbox import Outbox


async def test_batches_keep_order_and_a_failed_batch_does_not_stop_the_sender(
        caplog: pytest.LogCaptureFixture) -> None:
    sent: list[list[int]] = []
    fail_next = True

    async def send(batch: list[int]) -> None:
        nonlocal fail_next
        await asyncio.sleep(0.01)  # a round trip: what is put meanwhile forms the next batch
        if fail_next:
            fail_next = False
            raise ConnectionError("server went away")
        sent.append(batch)

    outbox: Outbox[int] = Outbox(send, name="test-outbox")
    with caplog.at_level(logging.ERROR, logger="workeros.bus"):
        outbox.put(0)  # this batch fails
        await asyncio.sleep(0)
        for i in range(1, 6):
            outbox.put(i)
        await outbox.flush()
        outbox.put(6)
        await outbox.close()
    assert "could not send 1 bus message" in caplog.text
    assert [i for batch in sent for i in batch] == [1, 2, 3, 4, 5, 6]
    assert sent[0] == [1, 2, 3, 4, 5]  # queued during the failed round trip: one batch
    assert len(outbox) == 0


async def test_close_gives_up_after_its_timeout(caplog: pytest.LogCaptureFixture) -> None:
    async def never(batch: list[int]) -> None:
        await asyncio.sleep(3600)

    outbox: Outbox[int] = Outbox(never, name="test-outbox")
    outbox.put(1)
    outbox.put(2)
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="workeros.bus"):
        await outbox.close(timeout=0.1)
    assert "unsent" in caplog.text
