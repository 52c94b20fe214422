"""Waiting on state, never on a pause of a guessed length."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(
    condition: Callable[[], object], patience: float = 30.0, *, what: str | None = None
) -> None:
    """Return once `condition()` holds; fail if it has not within `patience` seconds (a bound
    for a broken test, not a guess of how long anything takes), naming `what` was awaited."""
    try:
        async with asyncio.timeout(patience):
            while not condition():
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"not within {patience} s: {what or condition}") from None
