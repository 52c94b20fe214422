"""The log is JSON lines on stdout, warnings included: nothing escapes as free text on stderr."""

from __future__ import annotations

import json
import subprocess
import sys

PROGRAM = """
import numpy as np, structlog
from thumbservice.adapters.observability.logs import configure_logging
configure_logging("INFO", "json")
structlog.get_logger("test").info("hello", n=1)
np.array([1.0]) / np.array([0.0])  # numpy's RuntimeWarning: divide by zero
"""


def test_warnings_become_json_log_lines() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stderr == ""
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["event"] == "hello"
    warning = lines[1]
    assert warning["level"] == "warning"
    assert "divide by zero" in warning["event"]
