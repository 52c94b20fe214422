"""Render workers that fail the way a broken deployment makes them fail (for readiness tests).

Installed in place of `worker.init_worker` before a pool starts; a spawned worker imports this
module by name and runs it as its initializer.
"""

from __future__ import annotations

import os


def exit_as_it_starts(*settings: object) -> None:
    """A worker that exits before it takes any job, as one whose start-up check misfires."""
    os._exit(1)
