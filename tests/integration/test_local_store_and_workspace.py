"""The local filesystem store and the scratch workspace, on a real filesystem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from thumbservice.adapters.storage.local import LocalFileStore
from thumbservice.adapters.workspace import PREFIX, TempWorkspace

KEY = "42.0123456789abcdef0123456789abcdef.jpg"


async def test_local_store_round_trip(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = LocalFileStore(tmp_path / "store", "http://svc:8080/", b"secret", clock=lambda: now[0])
    assert not await store.exists(KEY)
    assert await store.get(KEY) is None
    await store.put(KEY, b"jpeg", "image/jpeg")
    assert await store.exists(KEY)
    assert await store.get(KEY) == b"jpeg"
    assert [p.name for p in (tmp_path / "store").iterdir()] == [KEY]
    url = await store.url_for(KEY, 60)
    assert url.startswith(f"http://svc:8080/thumbnails/{KEY}?expires=1000060&signature=")
    signature = url.rsplit("=", 1)[1]
    assert store.verify(KEY, "1000060", signature)
    assert not store.verify(KEY, "1000061", signature)
    assert not LocalFileStore(tmp_path, "http://x", b"other").verify(KEY, "1000060", signature)
    now[0] += 61
    assert not store.verify(KEY, "1000060", signature)


async def test_local_store_refuses_keys_that_are_not_thumbnail_keys(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path, "http://x", b"s")
    with pytest.raises(ValueError, match="key"):
        await store.put("../../etc/passwd", b"x", "image/jpeg")
    assert not store.verify("../x.jpg", "9999999999", "sig")


async def test_workspace_directories_are_removed_on_success_and_failure(tmp_path: Path) -> None:
    workspace = TempWorkspace(tmp_path)
    async with workspace.directory() as first:
        (first / "frame-0.fits.fz").write_bytes(b"x" * 100)
        assert first.name.startswith(f"{PREFIX}{os.getpid()}-")
    with pytest.raises(RuntimeError):
        async with workspace.directory() as second:
            (second / "frame-0.fits.fz").write_bytes(b"x")
            raise RuntimeError("render failed")
    assert list(tmp_path.iterdir()) == []


def test_start_up_removes_leftovers_of_dead_processes_only(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / f"{PREFIX}{dead_pid}-abc").mkdir()
        (tmp_path / f"{PREFIX}{dead_pid}-abc" / "frame.fits").write_bytes(b"x")
        (tmp_path / f"{PREFIX}{live.pid}-def").mkdir()
        (tmp_path / f"{PREFIX}{os.getpid()}-old").mkdir()
        (tmp_path / "someone-elses-file").write_bytes(b"keep")
        removed = TempWorkspace(tmp_path).clean_stale()
        assert removed == 2
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [f"{PREFIX}{live.pid}-def", "someone-elses-file"]
        )
    finally:
        live.kill()
        live.wait()


def test_start_up_ignores_names_whose_pid_is_not_ascii_digits(tmp_path: Path) -> None:
    for name in (f"{PREFIX}²-abc", f"{PREFIX}١٢-abc", f"{PREFIX}-abc"):
        (tmp_path / name).mkdir()
    assert TempWorkspace(tmp_path).clean_stale() == 0
    assert len(list(tmp_path.iterdir())) == 3
