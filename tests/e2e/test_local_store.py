"""The local filesystem store end to end: a real render served under a signed, expiring URL."""

from __future__ import annotations

from tests.support.imaging import decode
from tests.support.metrics import metric


async def test_local_store_urls_are_signed_and_expire(make_client) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(thumbnail_store="local", public_url="http://testserver")
    body = await (await client.get("/101/?width=80")).json()
    assert body["url"].startswith("http://testserver/thumbnails/101.")
    path = body["url"].removeprefix("http://testserver")
    served = await client.get(path)
    assert served.status == 200
    assert decode(await served.read()).size == (80, 60)
    forged = await client.get(path[:-4] + "0000")
    assert forged.status == 403
    expired = await client.get(path.replace("expires=", "expires=1").split("&")[0] + "&signature=x")
    assert expired.status == 403
    unsigned = await client.get(path.split("?")[0])
    assert unsigned.status == 403


async def test_local_store_leases_are_files_removed_after_use(make_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(thumbnail_store="local", public_url="http://testserver")
    assert (await client.get("/101/?width=81")).status == 200
    text = await (await client.get("/metrics")).text()
    assert metric(text, "thumbservice_leases_enabled") == 1
    assert metric(text, "thumbservice_leases_total", outcome="won") == 1
    leases = tmp_path / "store" / "leases"
    assert [p.name for p in leases.iterdir()] == [".lock"]  # the claim's file is gone
