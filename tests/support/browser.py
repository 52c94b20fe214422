"""Debian's Chromium for the browser tests, installed on first use.

Playwright's own browser builds are downloaded from a CDN that a CI machine may not reach;
Debian's `chromium` package comes from the same package mirror as everything else. Playwright
drives it through its executable path. Where it is missing, it is installed with apt-get (the
tests run as root in CI); where that is impossible, the test fails saying what to install: the
browser test is part of the suite and is never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
"""The browser to drive; `CHROMIUM=/path/to/chrome` picks another."""

LAUNCH_ARGS = [
    "--headless=new",
    "--no-sandbox",  # the tests run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No calls home: on a machine without internet they would be refused or hang.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class BrowserUnavailable(RuntimeError):
    """Chromium is missing and could not be installed."""


def ensure_chromium() -> Path:
    """The path of a Chromium executable, installing Debian's package if it is missing."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BrowserUnavailable(
            f"{CHROMIUM} is missing: install Debian's chromium package "
            "(apt-get install chromium) or set CHROMIUM to a Chromium executable"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise BrowserUnavailable(f"apt-get could not install chromium: {done.stderr[-800:]}")
    if not CHROMIUM.exists():
        raise BrowserUnavailable(f"chromium was installed but {CHROMIUM} does not exist")
    return CHROMIUM
