"""The Dockerfile and compose.yaml, read as a reviewer would: without a container engine.

`make image-test` runs the image where podman or docker is at hand; these checks run
everywhere and keep the files in step with the code they name (the console script, the
healthcheck module, the settings).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def last(name: str) -> str:
    return [value for kind, value in instructions() if kind == name][-1]


def test_the_image_is_built_in_two_stages_from_the_lock() -> None:
    stages = [value for kind, value in instructions() if kind == "FROM"]
    assert len(stages) == 2 and stages[0].endswith("AS builder")
    runs = " ".join(value for kind, value in instructions() if kind == "RUN")
    assert "uv sync --frozen --no-dev --no-install-project" in runs
    assert "uv sync --frozen --no-dev --no-editable" in runs
    copied = [value.split()[0] for kind, value in instructions() if kind == "COPY"]
    allowed = (ROOT / ".dockerignore").read_text()
    for source in copied:
        if not source.startswith("--from"):
            assert f"!{source}" in allowed, f"{source} is copied but .dockerignore leaves it out"


def test_the_service_runs_unprivileged_and_stops_on_sigterm() -> None:
    # Numeric, so that Kubernetes' runAsNonRoot can check it without a runAsUser.
    user, group = last("USER").split(":")
    assert user.isdigit() and int(user) != 0 and group.isdigit()
    assert last("STOPSIGNAL") == "SIGTERM"
    entrypoint = json.loads(last("ENTRYPOINT"))  # the exec form: the service is PID 1
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["thumbservice"] and "thumbservice" in scripts


def test_the_healthcheck_and_the_variables_are_the_services() -> None:
    command = json.loads(last("HEALTHCHECK").split("CMD", 1)[1])
    assert command[:2] == ["python", "-m"]
    assert importlib.util.find_spec(command[2]) is not None
    env = image_environment()
    assert env["PORT"] == last("EXPOSE")
    assert env["TMP_DIR"].startswith("/") and env["HOST"] == "0.0.0.0"


def image_environment() -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", " ".join(v for k, v in instructions() if k == "ENV")))


def test_everything_the_service_writes_is_under_tmp() -> None:
    """The Deployment's read-only root leaves /tmp writable, and nothing else."""
    env = image_environment()
    for name in ("TMP_DIR", "LOCAL_STORE_DIR", "SAMPLE_ARCHIVE_DIR", "HOME"):
        assert Path(env[name]).is_relative_to("/tmp"), f"{name}={env[name]}"
    assert last("WORKDIR") == "/tmp"


def test_the_dockerfile_needs_no_frontend_image() -> None:
    """A `# syntax=` line makes BuildKit pull a frontend image, which an air-gapped build lacks."""
    first = (ROOT / "Dockerfile").read_text().splitlines()[0]
    assert not first.replace(" ", "").lower().startswith("#syntax=")


def make_image(*variables: str) -> str:
    done = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", "-C", str(ROOT), "image", *variables],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()[-1]


def test_make_image_builds_from_the_base_it_is_given() -> None:
    command = make_image("CONTAINER_ENGINE=docker", "PYTHON_IMAGE=registry.example/py:3.11")
    assert command.startswith("docker build ")
    assert "--build-arg PYTHON_IMAGE=registry.example/py:3.11" in command
    assert "--format" not in command  # docker's images keep HEALTHCHECK anyway
    assert "--build-arg" not in make_image("CONTAINER_ENGINE=docker")


def test_podman_builds_a_docker_format_image_that_keeps_its_healthcheck() -> None:
    command = make_image("CONTAINER_ENGINE=/usr/bin/podman")
    assert command.startswith("/usr/bin/podman build --format docker ")


def test_compose_runs_the_service_against_minio_with_its_bucket_made() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert set(services) == {"minio", "create-bucket", "thumbservice"}
    service = services["thumbservice"]
    env = service["environment"]
    assert env["STORAGE_URL"] == "http://minio:9000"
    # Presigned for the published port, which the host can resolve; minio:9000 it cannot.
    assert env["STORAGE_PUBLIC_URL"].endswith("//localhost:9000}")
    assert "9000:9000" in services["minio"]["ports"]
    assert service["depends_on"] == {
        "create-bucket": {"condition": "service_completed_successfully"}
    }
    maker = services["create-bucket"]
    assert maker["environment"]["BUCKET"] == env["AWS_BUCKET"]
    assert "mc mb" in " ".join(maker["command"])
    credentials = services["minio"]["environment"]
    assert env["AWS_ACCESS_KEY_ID"] == credentials["MINIO_ROOT_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == credentials["MINIO_ROOT_PASSWORD"]
