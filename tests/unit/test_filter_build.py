"""Building a filter from COPY output cut anywhere: the blocks, their order, their failures."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import pytest

from reputation.bloom import NumberFilter
from reputation.filters import copy_numbers_into

Sink = Callable[[bytes], Awaitable[None]]


class CopyOutput:
    """Stands for a ``ConsistentRead``: hands its text over in chunks cut at random places."""

    def __init__(self, text: bytes, fail_after: int | None = None) -> None:
        self.text = text
        self.fail_after = fail_after

    async def copy_number_keys(self, sink: Sink) -> None:
        rng = random.Random(7)
        start = 0
        chunks = 0
        while start < len(self.text):
            if self.fail_after is not None and chunks == self.fail_after:
                raise ConnectionResetError("connection lost during COPY")
            end = start + rng.randrange(1, 200_000)
            await sink(self.text[start:end])
            start = end
            chunks += 1


NUMBERS = [f"+849{i:08d}" for i in range(0, 400_000, 3)]


@pytest.mark.parametrize("blocks_ahead", [1, 4])
async def test_a_build_holds_every_number_read(blocks_ahead: int) -> None:
    text = "".join(f"{number}\n" for number in NUMBERS).encode()
    built = NumberFilter(300_000, 0.001)
    await copy_numbers_into(CopyOutput(text), built, blocks_ahead)
    expected = NumberFilter(300_000, 0.001)
    for number in NUMBERS:
        expected.add(number)
    assert built.bloom.bitarray == expected.bloom.bitarray
    assert len(built) == len(expected)


async def test_a_copy_that_breaks_off_fails_the_build() -> None:
    text = "".join(f"{number}\n" for number in NUMBERS).encode()
    with pytest.raises(ConnectionResetError):
        await copy_numbers_into(CopyOutput(text, fail_after=12), NumberFilter(300_000, 0.001), 4)
