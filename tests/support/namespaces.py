"""The container's process layout without a container: Linux namespaces through `unshare`.

`as_pid_one(command)` runs a command as PID 1 of a PID namespace of its own, as a container's
exec-form ENTRYPOINT runs the service. `read_only_except(writable, command)` adds a mount
namespace in which every file system is read-only but a fresh tmpfs on `writable` (the root
file system of `readOnlyRootFilesystem: true` with an `emptyDir` on /tmp), then runs the command
as PID 1 there. Root uses the namespaces directly; another user gets them in a user namespace of
its own (`--map-root-user`), where the kernel allows it.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

# Mount points left as a container has them: the kernel's own file systems and /dev/shm (a
# writable tmpfs in every container, which multiprocessing's semaphores use).
KERNEL_MOUNTS = ("/proc", "/sys", "/dev")

_PID_ONE = ["--pid", "--fork", "--mount-proc", "--kill-child"]


def _user_namespace() -> list[str]:
    return [] if os.geteuid() == 0 else ["--map-root-user"]


@functools.cache
def unavailable() -> str | None:
    """Why namespaces cannot be made here (None: they can)."""
    if not sys.platform.startswith("linux"):
        return "PID and mount namespaces are Linux's"
    unshare = shutil.which("unshare")
    if unshare is None:
        return "util-linux's unshare is not installed"
    trial = [unshare, *_user_namespace(), "--mount", *_PID_ONE, "sh", "-c", 'test "$$" = 1']
    try:
        done = subprocess.run(trial, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"unshare could not run: {err}"
    if done.returncode != 0:
        return f"unshare cannot make PID and mount namespaces here: {done.stderr.strip()}"
    return None


def skip_unless_available() -> None:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)


def as_pid_one(command: Sequence[str]) -> list[str]:
    """`command` as PID 1 of a new PID namespace (killed if unshare itself is)."""
    return ["unshare", *_user_namespace(), *_PID_ONE, *command]


def read_only_except(writable: Path, command: Sequence[str]) -> list[str]:
    """`command` as PID 1, every file system read-only but a new tmpfs mounted on `writable`."""
    script = (
        "set -e\n"
        # Every mount but the kernel's read-only, deepest first so none hides another.
        "awk '{print $5}' /proc/self/mountinfo | sort -r | while read -r point; do\n"
        '  case "$point" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue;; esac\n'
        '  mount -o remount,bind,ro "$point"\n'
        "done\n"
        'mount -t tmpfs -o mode=1777 tmpfs "$0"\n'
        'exec "$@"\n'
    )
    return [
        "unshare",
        *_user_namespace(),
        "--mount",
        *_PID_ONE,
        "sh",
        "-c",
        script,
        str(writable),
        *command,
    ]
