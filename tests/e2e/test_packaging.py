"""The package as operators install it: the wheel in a clean virtual environment.

The container image installs the same wheel the same way (dependencies from uv.lock, the
project built, not linked to the source tree), so this is the packaging the image relies on:
the wheel must carry the font, the /docs page's script and every dependency, and the
`thumbservice` console script must serve. Built with uv, from the uv cache that `make install`
filled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.imaging import decode
from tests.support.s3 import free_port
from tests.support.service import running_service

# Building the wheel and filling a virtual environment takes more than one request.
pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")


def uv(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [str(UV), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )
    assert done.returncode == 0, f"uv {' '.join(args)} failed:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding the wheel and the locked runtime dependencies."""
    work = tmp_path_factory.mktemp("packaging")
    uv("build", "--wheel", "--out-dir", str(work / "dist"))
    [wheel] = (work / "dist").glob("thumbservice-*.whl")
    requirements = work / "requirements.txt"
    uv("export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes",
       "--output-file", str(requirements))  # fmt: skip
    venv = work / "venv"
    uv("venv", "--python", sys.executable, str(venv))
    uv("pip", "install", "--python", str(venv / "bin" / "python"), "-r", str(requirements),
       str(wheel))  # fmt: skip
    return venv


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return answer.status, dict(answer.headers), answer.read()


@pytest.fixture(scope="module")
def console_script(
    installed: Path,
    sample_archive: tuple[Path, list[dict[str, Any]]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    work = tmp_path_factory.mktemp("installed-service")
    port = free_port()
    env = {
        "ARCHIVE_SOURCE": "samples",
        "SAMPLE_ARCHIVE_DIR": str(sample_archive[0]),
        "THUMBNAIL_STORE": "local",
        "LOCAL_STORE_DIR": str(work / "store"),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TMP_DIR": str(work / "tmp"),
        "RENDER_WORKERS": "1",
        # Nothing of the source tree or of the development environment may leak in.
        "PYTHONPATH": "",
        "VIRTUAL_ENV": str(installed),
        "PATH": f"{installed / 'bin'}:/usr/bin:/bin",
    }
    command = [str(installed / "bin" / "thumbservice")]
    with running_service(command, env, work / "service.log", port, cwd=work) as url:
        yield url


def test_the_wheel_installs_its_own_code(installed: Path) -> None:
    done = subprocess.run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import thumbservice; print(thumbservice.__file__)",
        ],
        capture_output=True,
        text=True,
        cwd=installed,
        check=True,
    )
    assert done.stdout.startswith(str(installed)), done.stdout


def test_the_console_script_serves_thumbnails(console_script: str) -> None:
    status, headers, body = fetch(f"{console_script}/1001/?width=120&image=true")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert decode(body).size == (120, 120)
    status, _, body = fetch(f"{console_script}/1001/?width=150&format=webp&label=So%20many%20stars")
    url = json.loads(body)["url"]
    status, headers, body = fetch(url)
    assert status == 200 and headers["Content-Type"] == "image/webp"
    assert decode(body, "WEBP").size == (150, 150)


def test_the_docs_page_is_served_from_the_installed_packages(console_script: str) -> None:
    for name in ("docs.js", "swagger-ui-bundle.js", "swagger-ui.css"):
        status, _, body = fetch(f"{console_script}/docs/static/{name}")
        assert status == 200 and body


def test_the_viewer_and_openseadragon_ship_in_the_wheel(console_script: str) -> None:
    for name in ("openseadragon.min.js", "LICENSE.txt", "images/zoomin_rest.png"):
        status, _, body = fetch(f"{console_script}/static/openseadragon/{name}")
        assert status == 200 and body, name
    status, _, body = fetch(f"{console_script}/view/1001")
    assert status == 200 and b"openseadragon.min.js" in body and b"/static/viewer.js" in body
    status, _, body = fetch(f"{console_script}/static/viewer.js")
    assert status == 200 and b"ajaxHeaders" in body  # the page's own script, from the wheel
    status, _, body = fetch(f"{console_script}/iiif/3/1001/0,0,512,512/256,256/0/default.jpg")
    assert status == 200 and decode(body).size == (256, 256)


def test_the_healthcheck_of_the_image_sees_the_service(
    installed: Path, console_script: str
) -> None:
    port = console_script.rsplit(":", 1)[1]
    command = [str(installed / "bin" / "python"), "-m", "thumbservice.entrypoints.healthcheck"]
    assert subprocess.run(command, env={"PORT": port}).returncode == 0
    assert subprocess.run(command, env={"PORT": str(free_port())}).returncode == 1
