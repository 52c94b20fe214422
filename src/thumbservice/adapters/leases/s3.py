"""Leases as S3 objects under their own prefix, written only with conditions.

`PutObject` with `If-None-Match: *` creates a lease only if there is none (412 otherwise);
`PutObject` and `DeleteObject` with `If-Match: <ETag>` change it only if nobody else has since
(412 otherwise). AWS S3 has both since 2024; MinIO, Ceph and moto too. A concurrent conditional
write may also answer 409 (ConditionalRequestConflict): that is a lost race as well.

Every call goes through the hot-path client: no retry (a retried create that had in fact
succeeded would look lost to its own writer) and `STORE_TIMEOUT`, so a stalled store costs a
claim seconds and the replica renders without a lease.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from thumbservice.domain.errors import StoreUnavailable

_LOST = {"PreconditionFailed": "412", "ConditionalRequestConflict": "409"}
_MISSING = {"NoSuchKey": "404", "NotFound": "404"}  # not NoSuchBucket: that is a failure
_FAILURES = (ClientError, BotoCoreError, OSError, TimeoutError)

log = structlog.get_logger("thumbservice.leases")


class S3LeaseStore:
    """LeaseStore on one bucket: the lease of `key` is the object `{prefix}{key}`."""

    def __init__(
        self, client: Any, bucket: str, prefix: str = "leases/", timeout: float | None = None
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.timeout = timeout

    def object_key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    async def create(self, key: str, body: bytes) -> str | None:
        return await self._put(key, body, _LOST, IfNoneMatch="*")

    async def replace(self, key: str, body: bytes, version: str) -> str | None:
        # Gone is as good as changed: the lease is no longer the one this replica saw.
        return await self._put(key, body, {**_LOST, **_MISSING}, IfMatch=version)

    async def _put(
        self, key: str, body: bytes, refusals: dict[str, str], **condition: str
    ) -> str | None:
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.client.put_object(
                    Bucket=self.bucket,
                    Key=self.object_key(key),
                    Body=body,
                    ContentType="application/json",
                    **condition,
                )
        except ClientError as err:
            if _is(err, refusals):
                return None  # the condition did not hold
            raise _unavailable("write", key, err) from None
        except _FAILURES as err:
            raise _unavailable("write", key, err) from None
        return str(response["ETag"])

    async def read(self, key: str) -> tuple[bytes, str] | None:
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.client.get_object(
                    Bucket=self.bucket, Key=self.object_key(key)
                )
                async with response["Body"] as stream:
                    body: bytes = await stream.read()
        except ClientError as err:
            if _is(err, _MISSING):
                return None
            raise _unavailable("read", key, err) from None
        except _FAILURES as err:
            raise _unavailable("read", key, err) from None
        return body, str(response["ETag"])

    async def delete(self, key: str, version: str) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self.client.delete_object(
                    Bucket=self.bucket, Key=self.object_key(key), IfMatch=version
                )
        except ClientError as err:
            if _is(err, {**_LOST, **_MISSING}):
                return  # taken over, or gone already: not this replica's to remove
            raise _unavailable("remove", key, err) from None
        except _FAILURES as err:
            raise _unavailable("remove", key, err) from None


def _is(err: ClientError, codes: dict[str, str]) -> bool:
    """True when the error is one of `codes` (code -> HTTP status); an answer without a code
    (a HEAD-like reply, some S3-compatible stores) is judged by its status."""
    code = str(err.response.get("Error", {}).get("Code", ""))
    if code and not (code.isascii() and code.isdigit()):
        return code in codes
    status = code or str(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return status in codes.values()


def _unavailable(action: str, key: str, err: BaseException) -> StoreUnavailable:
    # Never shown to a caller (a failed claim means rendering without a lease), only logged.
    log.warning("lease_store_failed", action=action, key=key, error=str(err) or type(err).__name__)
    return StoreUnavailable(f"The object store could not {action} the thumbnail's lease")
