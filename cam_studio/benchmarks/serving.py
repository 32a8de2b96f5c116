"""The real app on a free loopback port, for the benchmarks and the tests: one way to start it,
and one way to be its client."""

from __future__ import annotations

import functools
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cam_studio.benchmarks.measure import scratch_folder

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


@functools.cache
def downloads() -> str:
    """Where this process's clients put what they download (the grids, the files), removed at
    exit. gradio_client's default is a shared ``gradio`` folder in the system's temporary folder
    that nothing empties: every test run and benchmark added to it (1.5 GB were found).

    gradio_client also stages each download in a new folder of the system's temporary folder
    and leaves it there empty (7633 were found), so this process's temporary folder becomes
    this one from here on, and goes with it."""
    folder = scratch_folder("cams-client-")
    tempfile.tempdir = str(folder)
    return str(folder)


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client of a run (built once: see ``app_client``)."""
    return ssl.create_default_context()


def app_client(url: str, **options):
    """A ``gradio_client.Client`` of the app at ``url`` (``options`` on top: ``auth``,
    ``download_files``…), downloading into ``downloads()``. Like a browser, it does not build a
    new TLS context (its certificate store read from disk) for each HTTP call it makes:
    gradio_client does, over plain http too, and with 30 clients on the server's two cores that
    alone took more of the run's CPU than the server (py-spy, 2026-12-02). It still verifies
    certificates."""
    from gradio_client import Client
    return Client(url, **{"verbose": False, "ssl_verify": shared_tls_context(),
                          "download_files": downloads(), **options})
