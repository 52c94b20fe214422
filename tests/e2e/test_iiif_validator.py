"""The official IIIF validator (PyPI `iiif-validator`, `iiif-validate.py --version=3.0 --level 2`)
against the service, through the real FITS path.

The stand-in archive serves the validator's test image as three FITS frames (the red, visual
and blue frames of one observing request, `tests/support/validation.py`); the validator asks
for the colour composite drawn with a linear stretch and cuts 0..255, which gives back the
image's own colours. Every level-2 test of the validator runs: those that only look at the
protocol (info.json, CORS, redirects, errors, formats, qualities) and those that compare the
colours of the image's squares.

The validator needs python-magic, which needs libmagic: where it is missing it is installed
with apt-get, as the browser test installs Chromium.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.e2e.conftest import AppFactory
from tests.support.archive_server import ArchiveStub, running_archive
from tests.support.validation import IDENTIFIER, build_validation_frames
from thumbservice.domain.iiif import parse_identifier

pytestmark = pytest.mark.timeout(300)

VALIDATOR = Path(sys.executable).with_name("iiif-validate.py")
VALIDATOR_PATIENCE = 240.0
"""The longest a validator run may take before it is killed and the test fails (a bound for a
hung run, far beyond what a run takes)."""
PIXEL_TESTS = {
    "id_squares", "region_percent", "region_pixels", "rot_full_basic", "rot_region_basic",
    "size_bwh", "size_ch", "size_percent", "size_region", "size_wc", "size_wh",
}  # fmt: skip
"""The level-2 tests that compare the colours of the image's squares (the others look at the
protocol only)."""

CANONICAL = parse_identifier(IDENTIFIER).canonical
"""The identifier as the validator is given it. The validator requires info.json's `id` to be
the URL it asked for, so the identifier must be its own canonical form: options sorted, each in
its one spelling, none at its default (`test_an_identifier_spelled_canonically_is_kept`)."""
assert CANONICAL == IDENTIFIER, CANONICAL


def ensure_libmagic() -> None:
    """python-magic loads libmagic when imported: install Debian's libmagic1 if it is missing."""
    probe = [sys.executable, "-c", "import magic"]
    if subprocess.run(probe, capture_output=True).returncode == 0:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("libmagic is missing: install Debian's libmagic1 (apt-get install libmagic1)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "libmagic1"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"apt-get could not install libmagic1: {done.stderr[-800:]}"


def level2_tests() -> set[str]:
    from iiif_validator.validator import TestSuite, ValidationInfo

    tests = TestSuite(ValidationInfo()).list_tests("3.0")
    return {name for name, test in tests.items() if test["level"] <= 2}


@pytest.fixture
async def validation_archive(tmp_path: Path) -> AsyncIterator[ArchiveStub]:
    frames = build_validation_frames(tmp_path / "validation")
    async with running_archive(tmp_path / "validation") as stub:
        for record, path in frames.values():
            stub.add_frame(record, path)
        yield stub


@pytest.fixture
async def service(make_client: AppFactory, validation_archive: ArchiveStub) -> TestClient:
    return await make_client(archive_api_url=validation_archive.root, public_url=None)


async def validate(client: TestClient, tests: set[str]) -> tuple[int, str]:
    """Run the validator on `tests`; its exit status (the failures) and its output."""
    ensure_libmagic()
    # The validator gives each request 5 s: the frames' first download and the workers' first
    # imports happen before it starts (on a loaded machine they can take longer than that).
    warm = await client.get(f"/iiif/3/{CANONICAL}/full/max/0/default.jpg")
    assert warm.status == 200, await warm.text()
    command = [
        sys.executable, str(VALIDATOR), "-s", f"127.0.0.1:{client.port}", "-p", "iiif/3",
        "-i", CANONICAL, "--version=3.0", "--level", "2",
        *(f"--test={name}" for name in sorted(tests)),
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), VALIDATOR_PATIENCE)
    finally:
        if process.returncode is None:  # it ran out of patience (or the test was cancelled)
            process.kill()
            await process.wait()
    return await process.wait(), output.decode(errors="replace")


def test_the_validators_level_2_tests_are_all_run() -> None:
    every = level2_tests()
    assert every > PIXEL_TESTS
    assert {"info_json", "jsonld", "cors", "baseurl_redirect", "quality_bitonal"} <= every


async def test_the_protocol_tests_of_level_2_pass(service: TestClient) -> None:
    tests = level2_tests() - PIXEL_TESTS
    failures, output = await validate(service, tests)
    assert failures == 0, output
    assert f"Done ({len(tests)} tests, 0 failures)" in output, output


async def test_the_colour_tests_of_level_2_pass(service: TestClient) -> None:
    failures, output = await validate(service, PIXEL_TESTS)
    assert failures == 0, output
    assert f"Done ({len(PIXEL_TESTS)} tests, 0 failures)" in output, output
