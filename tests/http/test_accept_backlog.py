"""The listen backlog under a connection cap: what the event loop may accept at once stays
within the descriptors the cap leaves free."""

from __future__ import annotations

import resource

import pytest

from thumbservice.entrypoints.server import (
    MAX_BACKLOG,
    RESERVED_DESCRIPTORS,
    accept_backlog,
    default_max_connections,
)


@pytest.mark.parametrize("soft", [100, 256, 1024, 65536])
def test_the_cap_and_a_burst_of_accepts_fit_the_file_limit(
    soft: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (soft, resource.RLIM_INFINITY))
    cap = default_max_connections()
    # Open connections plus one backlog accepted before the cap closes any: within the limit,
    # with the reserved descriptors (store, archive, workers, files) to spare.
    assert cap + accept_backlog(cap) <= soft - RESERVED_DESCRIPTORS


def test_a_large_cap_keeps_the_usual_backlog() -> None:
    assert accept_backlog(4096) == MAX_BACKLOG
    assert accept_backlog(18) == 18
    assert accept_backlog(1) == 1
