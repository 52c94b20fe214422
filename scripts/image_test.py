"""`make image-test`: start the image, fetch a thumbnail from it, stop it as an orchestrator does.

Stdlib only, so it runs with any Python 3.11 beside a container engine. Checks, in order: the
container becomes healthy (its HEALTHCHECK), it serves a JPEG and a JSON URL that serves the
image, /docs is served, and SIGTERM (`stop`) ends it promptly with exit status 0: the signal
reached the server and shutdown was graceful.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.request

PATIENCE = 120.0


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return answer.status, answer.headers.get("Content-Type", ""), answer.read()


def wait_until_healthy(engine: str, container: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        state = run(engine, "inspect", "--format", "{{.State.Status}}", container)
        health = run(engine, "inspect", "--format", "{{.State.Health.Status}}", container)
        if state != "running":
            raise SystemExit(f"the container stopped: {run(engine, 'logs', container)[-3000:]}")
        if health == "healthy":
            return
        time.sleep(1)
    raise SystemExit(f"the container never became healthy: {run(engine, 'logs', container)}")


def check(engine: str, image: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    container = run(
        engine, "run", "--detach", "--publish", f"127.0.0.1:{port}:8080",
        "--env", "ARCHIVE_SOURCE=samples", "--env", "THUMBNAIL_STORE=local",
        "--env", f"PUBLIC_URL={base}", "--env", "RENDER_WORKERS=1",
        "--health-interval", "2s", image,
    )  # fmt: skip
    try:
        wait_until_healthy(engine, container)
        status, kind, body = fetch(f"{base}/1001/?width=200&image=true")
        assert status == 200 and kind == "image/jpeg" and body[:2] == b"\xff\xd8", (status, kind)
        status, _, body = fetch(f"{base}/1001/?width=150&format=png")
        status, kind, body = fetch(json.loads(body)["url"])
        assert status == 200 and kind == "image/png" and body[:4] == b"\x89PNG", (status, kind)
        assert fetch(f"{base}/docs")[0] == 200
        user = run(engine, "exec", container, "id", "-u")
        assert user != "0", "the service runs as root"
        started = time.monotonic()
        run(engine, "stop", "--time", "40", container)
        stopped_in = time.monotonic() - started
        code = run(engine, "inspect", "--format", "{{.State.ExitCode}}", container)
        assert code == "0" and stopped_in < 35, f"exit {code} after {stopped_in:.1f} s"
        print(f"image-test: {image} healthy, served JPEG, PNG and /docs as uid {user}; "
              f"SIGTERM stopped it in {stopped_in:.1f} s with status 0")  # fmt: skip
    finally:
        subprocess.run([engine, "rm", "--force", container], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", required=True, help="podman or docker")
    parser.add_argument("--image", required=True)
    options = parser.parse_args()
    try:
        check(options.engine, options.image)
    except (AssertionError, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", "") or err
        print(f"image-test failed: {detail}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
