"""Thumbnails in S3 (or any S3-compatible endpoint) through one aiobotocore client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from thumbservice.domain.errors import StoreUnavailable

_MISSING = {"404", "NoSuchKey", "NotFound"}

log = structlog.get_logger("thumbservice.s3")


class S3Store:
    """ObjectStore on one bucket. Every failure to reach or use S3 becomes StoreUnavailable."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    async def exists(self, key: str) -> bool:
        try:
            await self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _error_code(err) in _MISSING:
                return False
            raise _unavailable("check", key, err) from None
        except (BotoCoreError, OSError, TimeoutError) as err:
            raise _unavailable("check", key, err) from None
        return True

    async def get(self, key: str) -> bytes | None:
        try:
            response = await self.client.get_object(Bucket=self.bucket, Key=key)
            async with response["Body"] as body:
                data: bytes = await body.read()
        except ClientError as err:
            if _error_code(err) in _MISSING:
                return None
            raise _unavailable("read", key, err) from None
        except (BotoCoreError, OSError, TimeoutError) as err:
            raise _unavailable("read", key, err) from None
        return data

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            await self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                CacheControl="private, max-age=604800",
            )
        except (ClientError, BotoCoreError, OSError, TimeoutError) as err:
            raise _unavailable("store", key, err) from None

    async def url_for(self, key: str, expires_in: int) -> str:
        try:
            url: str = await self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=expires_in,
            )
        except (ClientError, BotoCoreError) as err:
            raise _unavailable("sign", key, err) from None
        return url

    async def check(self) -> None:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError, OSError, TimeoutError) as err:
            log.warning("store_check_failed", bucket=self.bucket, error=str(err))
            if isinstance(err, ClientError) and _error_code(err) in _MISSING | {"NoSuchBucket"}:
                raise StoreUnavailable("The object store has no bucket for thumbnails") from None
            raise StoreUnavailable("The object store is not reachable") from None

    async def ensure_bucket(self, region: str) -> None:
        """Create the bucket if it does not exist yet; a store that refuses is left to readiness."""
        try:
            await self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as err:
            if _error_code(err) not in _MISSING | {"NoSuchBucket"}:
                log.warning("bucket_check_failed", bucket=self.bucket, error=str(err))
                return
        except (BotoCoreError, OSError, TimeoutError) as err:
            log.warning("bucket_unreachable", bucket=self.bucket, error=str(err))
            return
        location = {} if region == "us-east-1" else {"LocationConstraint": region}
        try:
            await self.client.create_bucket(
                Bucket=self.bucket,
                **({"CreateBucketConfiguration": location} if location else {}),
            )
            log.info("bucket_created", bucket=self.bucket)
        except (ClientError, BotoCoreError, OSError, TimeoutError) as err:
            log.warning("bucket_create_failed", bucket=self.bucket, error=str(err))


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _unavailable(action: str, key: str, err: BaseException) -> StoreUnavailable:
    """A public message in plain words; the endpoint, bucket and cause go to the log."""
    log.warning("store_failed", action=action, key=key, error=str(err) or type(err).__name__)
    return StoreUnavailable(f"The object store could not {action} the thumbnail")


@asynccontextmanager
async def open_s3_client(
    *,
    region: str,
    access_key: str | None,
    secret_key: str | None,
    endpoint_url: str | None,
    connect_timeout: float = 3.0,
    read_timeout: float = 15.0,
) -> AsyncIterator[Any]:
    """The app's one S3 client. Path-style addressing for custom endpoints (MinIO, Ceph, moto)."""
    config = AioConfig(
        signature_version="s3v4",
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": 2, "mode": "standard"},
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    session = get_session()
    async with session.create_client(
        "s3",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    ) as client:
        yield client
