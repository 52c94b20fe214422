"""Thumbnails on the local filesystem, served by the app under signed, expiring URLs.

For development and small deployments: it behaves like presigned S3, so a URL handed to one
caller cannot be guessed, forged or used after it expires.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from thumbservice.domain.errors import StoreUnavailable
from thumbservice.domain.spec import KEY_PATTERN as _KEY_PATTERN
from thumbservice.domain.spec import is_ascii_digits

KEY_PATTERN = re.compile(_KEY_PATTERN)
ROUTE_PREFIX = "/thumbnails/"

log = structlog.get_logger("thumbservice.local_store")


class LocalFileStore:
    def __init__(
        self,
        root: Path,
        base_url: str,
        secret: bytes,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.clock = clock

    def path_for(self, key: str) -> Path:
        if not KEY_PATTERN.fullmatch(key):
            raise ValueError(f"not a thumbnail key: {key!r}")
        return self.root / key

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_for(key).is_file)

    async def get(self, key: str) -> bytes | None:
        try:
            return await asyncio.to_thread(self.path_for(key).read_bytes)
        except FileNotFoundError:
            return None
        except OSError as err:
            log.warning("store_failed", action="read", key=key, error=str(err))
            raise StoreUnavailable("The thumbnail store could not read the thumbnail") from None

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            await asyncio.to_thread(self._write, self.path_for(key), data)
        except OSError as err:
            log.warning("store_failed", action="write", key=key, error=str(err))
            raise StoreUnavailable("The thumbnail store could not store the thumbnail") from None

    def _write(self, path: Path, data: bytes) -> None:
        # Write then rename, so a reader never sees half a thumbnail.
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def url_for(self, key: str, expires_in: int) -> str:
        self.path_for(key)
        expires = int(self.clock()) + expires_in
        return (
            f"{self.base_url}{ROUTE_PREFIX}{key}"
            f"?expires={expires}&signature={self.sign(key, expires)}"
        )

    def sign(self, key: str, expires: int) -> str:
        message = f"{key}:{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def verify(self, key: str, expires: str, signature: str) -> bool:
        """True when the URL was made by this store (same secret) and has not expired."""
        if not KEY_PATTERN.fullmatch(key) or not is_ascii_digits(expires) or len(expires) > 12:
            return False
        if int(expires) < self.clock():
            return False
        # As bytes: compare_digest refuses str with non-ASCII characters, which a URL may carry.
        return hmac.compare_digest(self.sign(key, int(expires)).encode(), signature.encode())

    async def check(self) -> None:
        def probe() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise OSError(f"{self.root} is not writable")

        try:
            await asyncio.to_thread(probe)
        except OSError as err:
            log.warning("store_check_failed", error=str(err))
            raise StoreUnavailable("The thumbnail store is not writable") from None
