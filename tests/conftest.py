from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, moto_server

# botocore reads these too; keep tests from ever picking up a developer's real credentials.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)

_buckets = itertools.count(1)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket_name() -> str:
    return f"thumbs-{os.getpid()}-{next(_buckets)}"
