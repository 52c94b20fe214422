"""A local cluster: three replicas (`python -m thumbservice` each) on one S3 (moto) and one archive.

What a load balancer in front of replicas does to a cold thumbnail: identical requests spread
over the replicas render once, across processes, through the lease in the bucket; and a replica
killed while it holds the lease costs its callers, not the others, who get the thumbnail from a
replica that takes the expired lease over.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.support.archive_server import ArchiveStub, Fault, running_archive
from tests.support.frames import FrameSet
from tests.support.metrics import metric
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, create_bucket
from tests.support.service import ServiceProcess, kill_hard, service_processes
from thumbservice.adapters.rendering.framecache import is_cache_directory
from thumbservice.adapters.storage.s3 import open_s3_client

REPLICAS = 3
LEASE_TTL = 2.0
DEADLINE = 20.0


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(
    test_frames: FrameSet, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Cluster]:
    """Three replicas for the whole module (starting them is most of its time): the tests use
    frames and sizes of their own, and the one that kills a replica comes last."""
    workdir = tmp_path_factory.mktemp("cluster")
    bucket = f"cluster-{os.getpid()}"
    await create_bucket(s3_endpoint, bucket)
    async with running_archive(test_frames.directory) as archive:
        for name, record in test_frames.records.items():
            archive.add_frame(record, test_frames.paths[name])
        envs = []
        for i in range(REPLICAS):
            (workdir / f"scratch-{i}").mkdir()
            envs.append(
                {
                    "ARCHIVE_API_URL": archive.root,
                    "AWS_BUCKET": bucket,
                    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                    "AWS_DEFAULT_REGION": REGION,
                    "STORAGE_URL": s3_endpoint,
                    "TMP_DIR": str(workdir / f"scratch-{i}"),
                    "RENDER_WORKERS": "1",
                    "LEASES": "s3",
                    "LEASE_TTL": str(LEASE_TTL),
                    "REQUEST_DEADLINE": str(DEADLINE),
                    "SHUTDOWN_TIMEOUT": "10",
                    "LOG_LEVEL": "WARNING",
                }
            )
        logs = [workdir / f"replica-{i}.log" for i in range(REPLICAS)]
        async with service_processes(envs, logs) as replicas:
            yield Cluster(replicas, archive, bucket, s3_endpoint, workdir)


@dataclass
class Cluster:
    replicas: list[ServiceProcess]
    archive: ArchiveStub
    bucket: str
    s3_endpoint: str
    workdir: Path

    async def leases_left(self) -> list[str]:
        async with open_s3_client(
            region=REGION,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            endpoint_url=self.s3_endpoint,
        ) as s3:
            listed = await s3.list_objects_v2(Bucket=self.bucket, Prefix="leases/")
        return [item["Key"] for item in listed.get("Contents", [])]

    def scratch_left(self, replica: int) -> list[Path]:
        """What jobs left in a running replica's TMP_DIR (its frame cache lives there too)."""
        scratch = self.workdir / f"scratch-{replica}"
        return [p for p in scratch.iterdir() if not is_cache_directory(p)]


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    async with http.get(url) as response:
        body = await response.json()
        return response.status, body, time.monotonic() - started


async def counts(
    http: aiohttp.ClientSession, replicas: list[ServiceProcess], name: str, **labels: str
) -> list[float]:
    """A metric of each replica, in order."""
    found = []
    for replica in replicas:
        async with http.get(f"{replica.url}/metrics") as response:
            found.append(metric(await response.text(), name, **labels))
    return found


async def test_thirty_identical_cold_requests_over_three_replicas_render_once(
    cluster: Cluster,
) -> None:
    replicas, archive = cluster.replicas, cluster.archive
    archive.file_fault = Fault(stall=1.0)  # the owner's download lasts while the others claim
    async with aiohttp.ClientSession() as http:
        assert await counts(http, replicas, "thumbservice_leases_enabled") == [1.0] * REPLICAS
        answers = await asyncio.gather(
            *(get(http, f"{replicas[i % REPLICAS].url}/101/?width=150") for i in range(30))
        )
        latencies = [seconds for _, _, seconds in answers]
        print(f"30 answers in {min(latencies):.2f} to {max(latencies):.2f} s")
        assert [status for status, _, _ in answers] == [200] * 30
        assert len({body["url"].split("?")[0] for _, body, _ in answers}) == 1
        assert archive.downloads[101] == 1
        assert sum(await counts(http, replicas, "thumbservice_renders_total")) == 1
        won = await counts(http, replicas, "thumbservice_leases_total", outcome="won")
        lost = await counts(http, replicas, "thumbservice_leases_total", outcome="lost")
        assert sorted(won) == [0, 0, 1] and sorted(lost) == [0, 1, 1]
        assert sum(await counts(http, replicas, "thumbservice_lease_wait_seconds_count")) == 2
        assert sum(await counts(http, replicas, "thumbservice_single_flight_joins_total")) == 27
    assert await cluster.leases_left() == []
    assert [cluster.scratch_left(i) for i in range(REPLICAS)] == [[]] * REPLICAS


async def test_a_replica_killed_holding_the_lease_is_taken_over_after_it_expires(
    cluster: Cluster,
) -> None:
    # A frame no replica has rendered: one that kept the first test's picture would draw from
    # it, with no download and no render (the frame cache is each replica's own).
    archive = cluster.archive
    owner, others = cluster.replicas[0], cluster.replicas[1:]
    archive.downloads.clear()
    archive.file_fault = Fault(stall=60.0, times=1)  # the owner is still downloading when killed
    async with aiohttp.ClientSession() as http:
        renders_before = sum(await counts(http, others, "thumbservice_renders_total"))
        lost_before = sum(await counts(http, others, "thumbservice_leases_total", outcome="lost"))
        doomed = asyncio.create_task(get(http, f"{owner.url}/103/?width=160"))
        while archive.downloads[103] == 0:
            await asyncio.sleep(0.02)
        waiting = [
            asyncio.create_task(get(http, f"{replica.url}/103/?width=160"))
            for _ in range(9)
            for replica in others
        ]
        while (
            sum(await counts(http, others, "thumbservice_leases_total", outcome="lost"))
            < lost_before + 2
        ):
            await asyncio.sleep(0.05)
        killed_at = time.monotonic()
        await kill_hard(owner)
        answers = await asyncio.gather(*waiting)
        after_kill = time.monotonic() - killed_at
        print(f"18 answers {after_kill:.2f} s after the kill (lease TTL {LEASE_TTL:g} s)")
        with pytest.raises(aiohttp.ClientError):
            await doomed  # the killed replica's own caller: a dropped connection
        statuses = [status for status, _, _ in answers]
        assert set(statuses) <= {200, 503}
        assert statuses.count(200) == len(answers)
        assert max(seconds for _, _, seconds in answers) < DEADLINE
        # Not before the lease expired: the owner renewed it every third of the TTL.
        assert after_kill >= LEASE_TTL * 2 / 3 - 0.1
        taken_over = await counts(http, others, "thumbservice_leases_total", outcome="taken_over")
        assert sum(taken_over) == 1
        renders = sum(await counts(http, others, "thumbservice_renders_total"))
        assert renders - renders_before == 1
        assert archive.downloads[103] == 2  # the killed owner's, and the one that took over
    assert await cluster.leases_left() == []
    assert [cluster.scratch_left(i) for i in (1, 2)] == [[], []]
