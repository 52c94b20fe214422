"""The LeaseStore adapters: S3 conditional writes on moto's server, files with exclusive creates.

Both keep one contract (`domain.ports.LeaseStore`), checked here on each, and each decides a
race between separate clients or processes in favour of exactly one of them.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, dead_endpoint
from thumbservice.adapters.leases.local import LocalLeaseStore
from thumbservice.adapters.leases.s3 import S3LeaseStore
from thumbservice.adapters.storage.s3 import open_s3_client
from thumbservice.domain.errors import StoreUnavailable
from thumbservice.domain.leases import probe_conditional_writes
from thumbservice.domain.ports import LeaseStore

KEY = "101.0123456789abcdef0123456789abcdef.jpg"


@pytest.fixture
async def s3_client(s3_endpoint: str, bucket_name: str) -> AsyncIterator[Any]:
    async with open_s3_client(
        region=REGION,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        endpoint_url=s3_endpoint,
        attempts=1,
    ) as client:
        await client.create_bucket(Bucket=bucket_name)
        yield client


@pytest.fixture(params=["s3", "local"])
def lease_store(request: pytest.FixtureRequest, tmp_path: Path, bucket_name: str) -> LeaseStore:
    if request.param == "s3":
        client = request.getfixturevalue("s3_client")
        return S3LeaseStore(client, bucket_name, "leases/", timeout=5)
    return LocalLeaseStore(tmp_path / "leases")


async def test_the_lease_store_contract(lease_store: LeaseStore) -> None:
    first = await lease_store.create(KEY, b'{"owner":"a"}')
    assert first is not None
    assert await lease_store.create(KEY, b'{"owner":"b"}') is None
    assert await lease_store.read(KEY) == (b'{"owner":"a"}', first)
    assert await lease_store.replace(KEY, b'{"owner":"c"}', '"stale"') is None
    second = await lease_store.replace(KEY, b'{"owner":"a","renewals":1}', first)
    assert second is not None and second != first
    await lease_store.delete(KEY, first)  # no longer current: stays
    assert await lease_store.read(KEY) == (b'{"owner":"a","renewals":1}', second)
    await lease_store.delete(KEY, second)
    assert await lease_store.read(KEY) is None
    assert await lease_store.replace(KEY, b"{}", second) is None  # gone: nothing to replace
    await lease_store.delete(KEY, second)  # gone already: fine
    support = await probe_conditional_writes(lease_store, "probe-contract")
    assert support.writes and support.deletes
    assert await lease_store.read("probe-contract") is None


async def test_of_many_racing_claims_exactly_one_wins(lease_store: LeaseStore) -> None:
    versions = await asyncio.gather(
        *(lease_store.create(KEY, f'{{"owner":"{i}"}}'.encode()) for i in range(12))
    )
    assert sum(v is not None for v in versions) == 1
    current = await lease_store.read(KEY)
    assert current is not None
    taken = await asyncio.gather(
        *(lease_store.replace(KEY, f'{{"taker":"{i}"}}'.encode(), current[1]) for i in range(12))
    )
    assert sum(v is not None for v in taken) == 1


async def test_s3_leases_live_under_their_prefix(s3_client: Any, bucket_name: str) -> None:
    store = S3LeaseStore(s3_client, bucket_name, "thumbservice/leases/", timeout=5)
    await store.create(KEY, b"{}")
    listed = await s3_client.list_objects_v2(Bucket=bucket_name)
    assert [item["Key"] for item in listed["Contents"]] == [f"thumbservice/leases/{KEY}"]


class WithoutConditions:
    """An S3 client that drops If-None-Match and If-Match: a store without conditional writes."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def put_object(self, **params: Any) -> Any:
        params.pop("IfNoneMatch", None)
        params.pop("IfMatch", None)
        return await self.client.put_object(**params)

    async def delete_object(self, **params: Any) -> Any:
        params.pop("IfMatch", None)
        return await self.client.delete_object(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


async def test_the_probe_finds_a_store_without_conditional_writes(
    s3_client: Any, bucket_name: str
) -> None:
    store = S3LeaseStore(WithoutConditions(s3_client), bucket_name, timeout=5)
    support = await probe_conditional_writes(store, "probe-unconditional")
    assert not support.writes
    listed = await s3_client.list_objects_v2(Bucket=bucket_name)
    assert listed.get("Contents", []) == [], "the probe left its lease behind"


async def test_s3_failures_are_store_unavailable_not_a_lost_claim(s3_client: Any) -> None:
    missing_bucket = S3LeaseStore(s3_client, "no-such-bucket", timeout=5)
    with pytest.raises(StoreUnavailable) as failed:
        await missing_bucket.create(KEY, b"{}")
    assert "no-such-bucket" not in failed.value.message
    with pytest.raises(StoreUnavailable):
        await missing_bucket.read(KEY)
    async with open_s3_client(
        region=REGION,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        endpoint_url=dead_endpoint(),
        attempts=1,
    ) as dead:
        with pytest.raises(StoreUnavailable):
            await S3LeaseStore(dead, "thumbs", timeout=2).create(KEY, b"{}")


CONTENDER = """
import asyncio, sys, time
from pathlib import Path
from thumbservice.adapters.leases.local import LocalLeaseStore

store = LocalLeaseStore(Path(sys.argv[1]))
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
if sys.argv[3] == "create":
    won = asyncio.run(store.create("lease", sys.argv[4].encode()))
else:
    won = asyncio.run(store.replace("lease", sys.argv[4].encode(), sys.argv[3]))
print("won" if won else "lost")
"""


async def contend(directory: Path, action: str, processes: int = 4) -> list[str]:
    """`processes` separate processes doing `action` on one lease at the same instant."""
    start = time.time() + 1.5  # after every process has imported the adapter
    running = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CONTENDER,
            str(directory),
            str(start),
            action,
            f'{{"{action[:6]}":"process-{i}"}}',  # never the same bytes (and version) twice
            stdout=asyncio.subprocess.PIPE,
        )
        for i in range(processes)
    ]
    outputs = [await process.communicate() for process in running]
    return [out.decode().strip() for out, _ in outputs]


async def test_local_leases_between_processes_one_wins_each_race(tmp_path: Path) -> None:
    directory = tmp_path / "leases"
    assert sorted(await contend(directory, "create")) == ["lost", "lost", "lost", "won"]
    current = await LocalLeaseStore(directory).read("lease")
    assert current is not None
    assert sorted(await contend(directory, current[1])) == ["lost", "lost", "lost", "won"]
    assert sorted(p.name for p in directory.iterdir()) == [".lock", "lease"]  # no scratch left
