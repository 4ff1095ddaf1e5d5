"""FanoutLink on virtual time: the first stream of an idle unclocked source (a tone, a
file) gets its first chunk at once, the next ones on the ticker's schedule, no burst."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from rocd.net.roc import (
    FanoutLink,
    Sender,
    SenderConfig,
    SendLink,
    Ticker,
    UdpEndpoint,
    sender_endpoints,
)
from tests.net.test_send_link import ArraySource, tone

CHUNK = 441  # 10 ms at 44.1 kHz
PACKET = 221  # frames of a 5 ms packet at 44.1 kHz


async def _link(rx: UdpEndpoint) -> SendLink:
    """A sender to `rx` (RTP only), opened."""
    sender = Sender(
        SenderConfig(fec=None), input_rate=44100, input_channels=2, rng=random.Random(1)
    )
    link = SendLink(sender, sender_endpoints(f"rtp://127.0.0.1:{rx.local[1]}"))
    await link.open()
    return link


def _packets(link: SendLink) -> int:
    return link.sender.metrics().source_packets


def _packets_of(chunks: int) -> int:
    """Source packets the sender has sent once given `chunks` chunks."""
    return chunks * CHUNK // PACKET


@pytest.mark.parametrize(
    ("phase_s", "second_tick"),
    # Ticks at 10 ms, 20 ms, ...; chunks due 5 ms before them. Attached early in a period,
    # the second chunk is due before the next tick; late in it, before the one after.
    [(0.0333, 1), (0.0377, 2)],
)
async def test_the_first_chunk_leaves_at_attach_and_the_rest_on_the_ticks(
    mock_clock: trio.testing.MockClock, phase_s: float, second_tick: int
) -> None:
    mock_clock.autojump_threshold = 0
    with trio.fail_after(10):
        rx = await UdpEndpoint.bind(("127.0.0.1", 0))
        async with trio.open_nursery() as nursery:
            ticker = await nursery.start(Ticker().run)
            fan = FanoutLink(ArraySource(tone(1.0), 44100), ticker=ticker)
            nursery.start_soon(fan.run)
            await trio.sleep(phase_s)  # read ahead by now; nothing attached, nothing sent
            assert fan.chunks == 0
            link = await _link(rx)
            fan.add(link)
            assert (fan.chunks, _packets(link)) == (1, 1)  # in `add`, before any tick
            # Then one chunk at each tick, from the first or the second one on.
            counts = []
            for tick in range(1, 11):
                await trio.sleep_until(0.04 + (tick - 1) * 0.01 + 0.001)
                counts.append(fan.chunks)
            assert counts == [1 + max(0, tick - second_tick + 1) for tick in range(1, 11)]
            assert _packets(link) == _packets_of(fan.chunks)
            # A second stream of the running source joins its schedule: nothing extra.
            await trio.sleep(0.004)
            other = await _link(rx)
            fan.add(other)
            assert _packets(other) == 0
            await trio.sleep(0.01)
            assert _packets(other) == 1
            nursery.cancel_scope.cancel()
        for each in (link, other):
            each.close()
        rx.close()


async def test_a_source_not_read_yet_starts_at_its_first_tick(
    mock_clock: trio.testing.MockClock,
) -> None:
    """Attached before the read-ahead has anything: no chunk in `add`, and none lost."""
    mock_clock.autojump_threshold = 0
    with trio.fail_after(10):
        rx = await UdpEndpoint.bind(("127.0.0.1", 0))
        async with trio.open_nursery() as nursery:
            ticker = await nursery.start(Ticker().run)
            fan = FanoutLink(ArraySource(tone(1.0), 44100), ticker=ticker)
            link = await _link(rx)
            fan.add(link)  # before the source's loop runs
            assert fan.chunks == 0
            nursery.start_soon(fan.run)
            await trio.sleep(0.0151)
            assert fan.chunks == 1  # at the first tick
            await trio.sleep(0.05)
            assert fan.chunks == 6
            nursery.cancel_scope.cancel()
        link.close()
        rx.close()
