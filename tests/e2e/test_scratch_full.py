"""A full TMP_DIR: a tmpfs of a few KB as the scratch space, the real archive download into it.

Mounting needs root (or a mount namespace); without either the test is skipped, saying why.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import AppFactory
from tests.support.archive_server import ArchiveStub
from tests.support.metrics import metric


@pytest.fixture
def tiny_tmp_dir(tmp_path: Path) -> Iterator[Path]:
    """A 64 KB tmpfs: far too small for any test frame."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


async def test_a_full_tmp_dir_is_a_503_in_plain_words_counted_and_left_clean(
    make_client: AppFactory, archive: ArchiveStub, tiny_tmp_dir: Path
) -> None:
    client = await make_client(tmp_dir=tiny_tmp_dir, readiness_cache_seconds=0)
    for path in ("/101/?width=120", "/101/?width=121&image=true"):
        response = await client.get(path)
        assert response.status == 503, await response.text()
        body = await response.json()
        assert body["message"] == (
            "There is no scratch space left to make this thumbnail; retry later"
        )
        assert str(tiny_tmp_dir) not in body["message"]
        assert response.headers["Retry-After"]
        assert list(tiny_tmp_dir.iterdir()) == [], "a partial download was left behind"
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["scratch"] != "ok"
    text = await (await client.get("/metrics")).text()
    assert metric(text, "thumbservice_scratch_full_total") == 2
    assert (await client.get("/healthz")).status == 200
