"""Leases as files next to the local store's thumbnails, with the same contract as S3's.

So that several processes on one machine (`make run` twice, or a shared volume on one node)
behave as replicas on S3 do. A lease is created by hard-linking a fully written temporary file
to its name, which fails if the name exists: an exclusive create that never shows a half-written
lease. Its version is a digest of its bytes, as S3's ETag is for a small object. Replacing and
removing compare the version and act under an exclusive `flock` on one lock file of the
directory, so a check and its write are one step for every process on the machine. (`flock` is
not reliable over NFS: for replicas on several machines, use S3.)
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import structlog

from thumbservice.domain.errors import StoreUnavailable

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
LOCK_FILE = ".lock"

T = TypeVar("T")

log = structlog.get_logger("thumbservice.leases")


class LocalLeaseStore:
    """LeaseStore in one directory: the lease of `key` is the file `directory/key`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, key: str) -> Path:
        if not NAME.fullmatch(key):
            raise ValueError(f"not a lease name: {key!r}")
        return self.directory / key

    async def create(self, key: str, body: bytes) -> str | None:
        return await self._run("write", key, self._create, self.path_for(key), body)

    async def replace(self, key: str, body: bytes, version: str) -> str | None:
        return await self._run("write", key, self._replace, self.path_for(key), body, version)

    async def read(self, key: str) -> tuple[bytes, str] | None:
        return await self._run("read", key, _read, self.path_for(key))

    async def delete(self, key: str, version: str) -> None:
        await self._run("remove", key, self._delete, self.path_for(key), version)

    async def _run(self, action: str, key: str, work: Callable[..., T], *args: object) -> T:
        try:
            return await asyncio.to_thread(work, *args)
        except OSError as err:
            log.warning("lease_store_failed", action=action, key=key, error=str(err))
            raise StoreUnavailable(
                f"The thumbnail store could not {action} the thumbnail's lease"
            ) from None

    def _create(self, path: Path, body: bytes) -> str | None:
        scratch = self._written(body)
        try:
            os.link(scratch, path)
        except FileExistsError:
            return None
        finally:
            scratch.unlink(missing_ok=True)
        return _version(body)

    def _replace(self, path: Path, body: bytes, version: str) -> str | None:
        with self._locked():
            current = _read(path)
            if current is None or current[1] != version:
                return None
            scratch = self._written(body)
            try:
                os.replace(scratch, path)
            except BaseException:
                scratch.unlink(missing_ok=True)
                raise
        return _version(body)

    def _delete(self, path: Path, version: str) -> None:
        with self._locked():
            current = _read(path)
            if current is not None and current[1] == version:
                path.unlink(missing_ok=True)

    def _written(self, body: bytes) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.directory, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(body)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / LOCK_FILE).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _read(path: Path) -> tuple[bytes, str] | None:
    try:
        body = path.read_bytes()
    except FileNotFoundError:
        return None
    return body, _version(body)


def _version(body: bytes) -> str:
    return f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
