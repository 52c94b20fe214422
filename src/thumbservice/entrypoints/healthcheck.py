"""`python -m thumbservice.entrypoints.healthcheck`: exit 0 when this host's service answers
/healthz, else 1.

For a container's HEALTHCHECK: the runtime image has no curl, and the port is the service's own
`PORT` (and `HOST`, unless it listens on every address), read from the same environment.
"""

from __future__ import annotations

import os
import sys
import urllib.request

TIMEOUT = 3.0


def healthy(host: str, port: str) -> bool:
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=TIMEOUT) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def main() -> None:
    sys.exit(0 if healthy(os.environ.get("HOST", ""), os.environ.get("PORT", "8080")) else 1)


if __name__ == "__main__":
    main()
