"""The real app on a free loopback port, for the benchmarks and the tests: one way to start it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving_app(*arguments: str, environment: dict[str, str] | None = None,
                timeout_s: float = 120, log_file: Path | None = None) -> Iterator[tuple[str, int]]:
    """``python app.py --port FREE *arguments`` (offline, analytics off, ``environment`` on top)
    until the block ends: yields (its loopback URL, its pid) once it accepts connections; if it
    exits first, a RuntimeError carries the end of what it printed. What it prints goes to
    ``log_file`` if given."""
    port = free_port()
    env = {**os.environ, "CAMS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           **(environment or {})}
    with (open(log_file, "w+") if log_file is not None
          else tempfile.TemporaryFile("w+")) as output:
        server = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *arguments],
                                  cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                  text=True)
        try:
            deadline = time.time() + timeout_s
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if server.poll() is not None or time.time() > deadline:
                        output.seek(0)
                        raise RuntimeError("the app did not start: "
                                           + output.read()[-2000:]) from None
                    time.sleep(0.5)
            yield f"http://127.0.0.1:{port}/", server.pid
        finally:
            server.terminate()
            server.wait(timeout=30)
