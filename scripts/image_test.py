"""`make image-test`: the image started as the Deployment runs it, used, stopped with SIGTERM.

Stdlib only, so it runs with any Python 3.11 beside a container engine. The container runs with
the restrictions of `deploy/kubernetes/deployment.yaml`: a read-only root with a tmpfs on /tmp,
uid and gid 10001, no capabilities, and no init (the service is PID 1). Checks, in order:

- the image's own HEALTHCHECK passes: `podman healthcheck run` (podman schedules health checks
  only through systemd, so this script runs them), docker's own schedule otherwise;
- the service is PID 1 and not root; /readyz is ready (archive, store and render workers);
- it serves a JPEG, a JSON URL that serves a PNG, a colour composite whose channels differ, a
  proprietary frame only with its token, the second ask from the cache, and /docs;
- SIGTERM (`stop`) ends it promptly with exit status 0: shutdown was graceful.

Any failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib

PATIENCE = 120.0
SAMPLE_TOKEN = "Token sample-owner-token"  # the sample archive's owner of its proprietary frame


class Failed(Exception):
    """What went wrong, in one line."""


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise Failed(
            f"`{' '.join(args[:3])} ...` failed: {detail[-1] if detail else done.returncode}"
        )
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(url: str, token: str | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": token} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()
    except (urllib.error.URLError, OSError) as err:
        raise Failed(f"GET {url}: {getattr(err, 'reason', err)}") from None


def expect(url: str, status: int = 200, kind: str = "", token: str | None = None) -> bytes:
    answer, content_type, body = fetch(url, token)
    if answer != status or not content_type.startswith(kind):
        said = body[:200].decode("utf-8", "replace").replace("\n", " ")
        raise Failed(f"GET {url}: {answer} {content_type} ({said}), expected {status} {kind}")
    return body


def logs(engine: str, container: str) -> str:
    done = subprocess.run([engine, "logs", container], capture_output=True, text=True)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[-1] if lines else "(no log)"


def wait_until_healthy(engine: str, container: str) -> None:
    podman = "podman" in engine.rsplit("/", 1)[-1]
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if run(engine, "inspect", "--format", "{{.State.Status}}", container) != "running":
            raise Failed(f"the container stopped; its last log line: {logs(engine, container)}")
        if podman:
            done = subprocess.run(
                [engine, "healthcheck", "run", container], capture_output=True, text=True
            )
            if done.returncode == 0:
                return
            if "no defined healthcheck" in done.stderr.lower():
                raise Failed(
                    "the image has no HEALTHCHECK (built by podman without --format docker?)"
                )
        else:
            health = run(engine, "inspect", "--format", "{{json .State.Health}}", container)
            if health in ("", "null", "<nil>"):
                raise Failed("the image has no HEALTHCHECK")
            if json.loads(health).get("Status") == "healthy":
                return
        time.sleep(1)
    raise Failed(f"never healthy in {PATIENCE:g} s; its last log line: {logs(engine, container)}")


def png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and RGB bytes of an 8-bit RGB PNG (what the service writes)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise Failed("not a PNG")
    position, chunks, header = 8, [], b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        header = body if kind == b"IHDR" else header
        chunks += [body] if kind == b"IDAT" else []
        position += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    if (depth, color) != (8, 2):
        raise Failed(f"a PNG of depth {depth} and colour type {color}, expected 8-bit RGB")
    raw, stride, rows = zlib.decompress(b"".join(chunks)), width * 3, bytearray()
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - 3] if i >= 3 else 0
            b, c = previous[i], previous[i - 3] if i >= 3 else 0
            line[i] = (line[i] + (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]) & 0xFF
        rows += line
        previous = line
    return width, height, bytes(rows)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def coloured(rgb: bytes) -> int:
    """How many pixels are not grey (their channels differ by more than a tenth)."""
    return sum(1 for i in range(0, len(rgb), 3) if max(rgb[i : i + 3]) - min(rgb[i : i + 3]) > 24)


def cache_hits(metrics: str) -> float:
    prefix = 'thumbservice_cache_lookups_total{result="hit"} '
    found = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(found[0].removeprefix(prefix)) if found else 0.0


def check(engine: str, image: str) -> str:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    container = run(
        engine, "run", "--detach", "--publish", f"127.0.0.1:{port}:8080",
        # The Deployment's restrictions: read-only root, /tmp writable, uid 10001, no
        # capabilities, no init in front of the service.
        "--read-only", "--tmpfs", "/tmp", "--user", "10001:10001", "--cap-drop", "ALL",
        "--env", "ARCHIVE_SOURCE=samples", "--env", "THUMBNAIL_STORE=local",
        "--env", f"PUBLIC_URL={base}", "--env", "RENDER_WORKERS=1",
        "--health-interval", "2s", image,
    )  # fmt: skip
    try:
        wait_until_healthy(engine, container)
        init = run(engine, "exec", container, "cat", "/proc/1/cmdline").replace("\0", " ")
        if "thumbservice" not in init:
            raise Failed(f"PID 1 is {init!r}, not the service")
        user = run(engine, "exec", container, "id", "-u")
        if user == "0":
            raise Failed("the service runs as root")
        ready = json.loads(expect(f"{base}/readyz", kind="application/json"))
        if ready.get("renderer") != "ok":
            raise Failed(f"not ready: {ready}")
        jpeg = expect(f"{base}/1001/?width=200&image=true", kind="image/jpeg")
        if jpeg[:2] != b"\xff\xd8":
            raise Failed("/1001/ answered image/jpeg that is not a JPEG")
        url = json.loads(expect(f"{base}/1001/?width=150&format=png"))["url"]
        width, height, grey = png_pixels(expect(url, kind="image/png"))
        color_url = f"{base}/1003/?color=true&width=120&height=120&format=png&image=true"
        tinted = coloured(png_pixels(expect(color_url, kind="image/png"))[2])
        # PNG is lossless: a black-and-white thumbnail has no coloured pixel at all, a colour
        # composite of a star field has its coloured stars.
        if coloured(grey) != 0 or tinted < 10:
            raise Failed(
                f"colour: {coloured(grey)} coloured pixels in black and white, {tinted} in colour"
            )
        expect(f"{base}/1006/?width=100", status=404, kind="application/json")
        expect(f"{base}/1006/?width=100&image=true", kind="image/jpeg", token=SAMPLE_TOKEN)
        expect(f"{base}/1001/?width=200&image=true", kind="image/jpeg")  # asked for again
        if cache_hits(expect(f"{base}/metrics").decode()) < 1:
            raise Failed("a thumbnail asked for twice was rendered twice (no cache hit)")
        expect(f"{base}/docs", kind="text/html")
        started = time.monotonic()
        run(engine, "stop", "--time", "40", container)
        stopped_in = time.monotonic() - started
        code = run(engine, "inspect", "--format", "{{.State.ExitCode}}", container)
        if code != "0" or stopped_in >= 35:
            raise Failed(f"SIGTERM: exit status {code} after {stopped_in:.1f} s")
        return (
            f"image-test: {image} healthy as PID 1, uid {user}, read-only root, no capabilities; "
            f"served JPEG, PNG ({width}x{height}), colour ({tinted} coloured pixels), a "
            f"proprietary frame with its token only, a cache hit and /docs; SIGTERM stopped it "
            f"in {stopped_in:.1f} s with status 0"
        )
    finally:
        subprocess.run([engine, "rm", "--force", container], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", required=True, help="podman or docker")
    parser.add_argument("--image", required=True)
    options = parser.parse_args()
    try:
        print(check(options.engine, options.image))
    except (Failed, ValueError, KeyError) as err:
        print(f"image-test failed: {err}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
