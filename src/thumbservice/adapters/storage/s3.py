"""Thumbnails in S3 (or any S3-compatible endpoint) through aiobotocore.

Two clients for the life of the app, because the two kinds of call want different patience:

- the hot path (does this key exist, read it) answers within `STORE_TIMEOUT` or not at all, with
  no retry: a stalled store must not hold every request for the whole stall, and `image=true`
  renders instead when the store does not answer in time;
- uploads and bucket management keep longer timeouts and a retry, since they are off the
  caller's critical path or worth waiting for.

Every failure to reach or use S3 becomes StoreUnavailable with a message in plain words; the
endpoint, bucket and cause go to the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import BotoCoreError, ClientError

from thumbservice.domain.errors import StoreUnavailable
from thumbservice.domain.service import ONE_WEEK

_MISSING = {"404", "NoSuchKey", "NotFound"}
_NO_BUCKET = {"NoSuchBucket"}
_FAILURES = (ClientError, BotoCoreError, OSError, TimeoutError)

UPLOAD_READ_TIMEOUT = 15.0
CONNECT_TIMEOUT = 3.0

log = structlog.get_logger("thumbservice.s3")


class S3Store:
    """ObjectStore on one bucket; see the module docstring for the two clients."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        hot_client: Any | None = None,
        hot_timeout: float | None = None,
        region: str = "us-east-1",
        signing_client: Any | None = None,
    ) -> None:
        self.client = client
        self.hot_client = hot_client if hot_client is not None else client
        # URLs handed to callers are signed for the endpoint they reach the store by, which may
        # not be the one this service uses (STORAGE_PUBLIC_URL).
        self.signing_client = signing_client if signing_client is not None else self.hot_client
        self.bucket = bucket
        self.hot_timeout = hot_timeout
        self.region = region
        self._bucket_lock = asyncio.Lock()
        self.generation = 0
        """How many times the bucket was found gone: a CachedStore in front forgets then."""
        self._recreations = 0
        """How many times an upload made the bucket again (concurrent uploads make it once)."""

    def _bucket_gone(self, action: str) -> None:
        self.generation += 1
        log.warning("bucket_gone", bucket=self.bucket, action=action, generation=self.generation)

    async def exists(self, key: str) -> bool:
        try:
            async with asyncio.timeout(self.hot_timeout):
                await self.hot_client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _error_code(err) in _MISSING:
                return False
            raise _unavailable("check", key, err) from None
        except _FAILURES as err:
            raise _unavailable("check", key, err) from None
        return True

    async def get(self, key: str) -> bytes | None:
        try:
            async with asyncio.timeout(self.hot_timeout):
                response = await self.hot_client.get_object(Bucket=self.bucket, Key=key)
                async with response["Body"] as body:
                    data: bytes = await body.read()
        except ClientError as err:
            if _error_code(err) in _NO_BUCKET:
                self._bucket_gone("read")
            if _error_code(err) in _MISSING | _NO_BUCKET:
                return None
            raise _unavailable("read", key, err) from None
        except _FAILURES as err:
            raise _unavailable("read", key, err) from None
        return data

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        recreations = self._recreations
        try:
            await self._put(key, data, content_type)
            return
        except ClientError as err:
            if _error_code(err) not in _NO_BUCKET:
                raise _unavailable("store", key, err) from None
        except _FAILURES as err:
            raise _unavailable("store", key, err) from None
        # The bucket went away (a store restarted empty): make it again, as start-up does, then
        # try once more. Concurrent uploads wait for one creation rather than racing.
        # Counted apart from `generation`: a read that finds the bucket gone meanwhile must
        # not pass for the bucket made again.
        async with self._bucket_lock:
            if recreations == self._recreations:
                log.warning("bucket_missing", bucket=self.bucket, key=key)
                self._bucket_gone("store")
                await self.ensure_bucket()
                self._recreations += 1
        try:
            await self._put(key, data, content_type)
        except _FAILURES as err:
            raise _unavailable("store", key, err) from None

    async def _put(self, key: str, data: bytes, content_type: str) -> None:
        await self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            CacheControl=f"private, max-age={ONE_WEEK}",
        )

    async def url_for(self, key: str, expires_in: int) -> str:
        try:
            url: str = await self.signing_client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=expires_in,
            )
        except (ClientError, BotoCoreError) as err:
            raise _unavailable("sign", key, err) from None
        return url

    async def check(self) -> None:
        try:
            async with asyncio.timeout(self.hot_timeout):
                await self.hot_client.head_bucket(Bucket=self.bucket)
        except _FAILURES as err:
            log.warning(
                "store_check_failed", bucket=self.bucket, error=str(err) or type(err).__name__
            )
            if isinstance(err, ClientError) and _error_code(err) in _MISSING | _NO_BUCKET:
                self._bucket_gone("check")
                raise StoreUnavailable("The object store has no bucket for thumbnails") from None
            raise StoreUnavailable("The object store is not reachable") from None

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet; a store that refuses is left to readiness.

        Bounded by the hot path's timeout: a stalled store must not hold start-up either.
        """
        try:
            async with asyncio.timeout(self.hot_timeout):
                await self.hot_client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as err:
            if _error_code(err) not in _MISSING | _NO_BUCKET:
                log.warning("bucket_check_failed", bucket=self.bucket, error=str(err))
                return
        except (BotoCoreError, OSError, TimeoutError) as err:
            log.warning(
                "bucket_unreachable", bucket=self.bucket, error=str(err) or type(err).__name__
            )
            return
        location = {} if self.region == "us-east-1" else {"LocationConstraint": self.region}
        try:
            async with asyncio.timeout(self.hot_timeout):
                await self.client.create_bucket(
                    Bucket=self.bucket,
                    **({"CreateBucketConfiguration": location} if location else {}),
                )
            log.info("bucket_created", bucket=self.bucket)
        except ClientError as err:
            if _error_code(err) in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                return
            log.warning(
                "bucket_create_failed", bucket=self.bucket, error=str(err) or type(err).__name__
            )
        except (BotoCoreError, OSError, TimeoutError) as err:
            log.warning(
                "bucket_create_failed", bucket=self.bucket, error=str(err) or type(err).__name__
            )


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _unavailable(action: str, key: str, err: BaseException) -> StoreUnavailable:
    """A public message in plain words; the endpoint, bucket and cause go to the log."""
    cause = str(err) or type(err).__name__
    if isinstance(err, TimeoutError):
        log.warning("store_timeout", action=action, key=key)
        return StoreUnavailable(f"The object store did not answer in time to {action} it")
    log.warning("store_failed", action=action, key=key, error=cause)
    return StoreUnavailable(f"The object store could not {action} the thumbnail")


def _config(endpoint_url: str | None, *, read_timeout: float, attempts: int) -> AioConfig:
    return AioConfig(
        signature_version="s3v4",
        connect_timeout=min(CONNECT_TIMEOUT, read_timeout),
        read_timeout=read_timeout,
        retries={"max_attempts": attempts, "mode": "standard"},
        # Path-style addressing for custom endpoints (MinIO, Ceph, moto).
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )


@asynccontextmanager
async def open_s3_client(
    *,
    region: str,
    access_key: str | None,
    secret_key: str | None,
    endpoint_url: str | None,
    read_timeout: float = UPLOAD_READ_TIMEOUT,
    attempts: int = 2,
    session: AioSession | None = None,
) -> AsyncIterator[Any]:
    """One S3 client, closed on exit. Clients of one session share botocore's loaded models."""
    async with (session or get_session()).create_client(
        "s3",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=_config(endpoint_url, read_timeout=read_timeout, attempts=attempts),
    ) as client:
        yield client


@asynccontextmanager
async def open_s3_store(
    *,
    bucket: str,
    region: str,
    access_key: str | None,
    secret_key: str | None,
    endpoint_url: str | None,
    hot_timeout: float,
    public_url: str | None = None,
) -> AsyncIterator[S3Store]:
    """The app's S3 store: both clients open, the bucket created if it is missing.

    With `public_url`, a third client signs the URLs handed out for that endpoint (path-style):
    the one clients reach the store by when this service reaches it by another name.
    """
    session = get_session()
    async with AsyncExitStack() as stack:
        client, hot = [
            await stack.enter_async_context(
                open_s3_client(
                    region=region,
                    access_key=access_key,
                    secret_key=secret_key,
                    endpoint_url=endpoint_url,
                    read_timeout=read_timeout,
                    attempts=attempts,
                    session=session,
                )
            )
            for read_timeout, attempts in ((UPLOAD_READ_TIMEOUT, 2), (hot_timeout, 1))
        ]
        signing = None
        if public_url is not None:  # only ever signs: generate_presigned_url sends nothing
            signing = await stack.enter_async_context(
                open_s3_client(
                    region=region,
                    access_key=access_key,
                    secret_key=secret_key,
                    endpoint_url=public_url,
                    read_timeout=hot_timeout,
                    attempts=1,
                    session=session,
                )
            )
        store = S3Store(
            client,
            bucket,
            hot_client=hot,
            hot_timeout=hot_timeout,
            region=region,
            signing_client=signing,
        )
        await store.ensure_bucket()
        yield store
