"""The app end to end: ``python -m cams bench --app``."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.measure import status_mb
from cams.methods import DEFAULT_METHODS

ROOT = Path(__file__).resolve().parents[1]


def bench_app(requests: int = 10) -> dict:
    """The app end to end: start ``app.py`` on a free port, time ``explain`` requests through
    ``gradio_client`` (A and B set, every gradient method, default backbone, 224 px), then read
    the server's resident memory after it has loaded two backbones."""
    from gradio_client import Client
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "CAMS_OFFLINE": "1"})
    try:
        deadline = time.time() + 120
        while True:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(1)

        def explain_request(backbone: str = "efficientnet_lite0") -> float:
            start = time.perf_counter()
            client.predict(None, "chelsea", backbone, "clean", None, "clean", None, "", "",
                           list(DEFAULT_METHODS), 0.5, api_name="/explain")
            return (time.perf_counter() - start) * 1000

        explain_request()  # warm-up: loads the backbone
        latencies = [explain_request() for _ in range(requests)]
        explain_request("efficientnet_lite1")  # a second backbone in the cache
        rss_mb = status_mb("VmRSS", server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"requests": requests, "median_ms": statistics.median(latencies),
            "max_ms": max(latencies), "rss_after_two_backbones_mb": rss_mb}
