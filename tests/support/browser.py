"""Debian's Chromium for the browser tests, installed on first use.

Playwright's own browser builds are downloaded from a CDN that a CI machine may not reach;
Debian's `chromium` package comes from the same package mirror as everything else. Playwright
drives it through its executable path. Where it is missing, it is installed with apt-get (the
tests run as root in CI); where that is impossible, the test fails saying what to install: the
browser test is part of the suite and is never skipped.

The browser tests share the rest here as well: the launched browser, a page in a context of its
own, and a page served from another origin than the service.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.s3 import free_port

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


@contextlib.contextmanager
def launched_browser() -> Iterator[Browser]:
    """Chromium, launched headless with `LAUNCH_ARGS` (installed first if it is missing)."""
    executable = ensure_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), args=LAUNCH_ARGS)
        yield launched
        launched.close()


@contextlib.contextmanager
def opened_page(browser: Browser, width: int, height: int, timeout_ms: float) -> Iterator[Page]:
    """A page of the given viewport in a browser context of its own, closed afterwards."""
    context = browser.new_context(viewport={"width": width, "height": height})
    opened = context.new_page()
    opened.set_default_timeout(timeout_ms)
    yield opened
    context.close()


@contextlib.contextmanager
def other_origin(body: bytes, name: str) -> Iterator[str]:
    """The URL of a page served from another origin (another port) than the service: `body`
    as HTML, at /`name` (and at any other path too)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{name}"
    finally:
        server.shutdown()
        server.server_close()


def origin(url: str) -> str:
    """A URL's scheme and host (`http://host:port`), or its scheme alone where it has no host
    (`blob`, `data`)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else parts.scheme
