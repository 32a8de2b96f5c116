"""The app and the commands log through Python logging: quiet by default, --log-level INFO for
every request with its time, a user's mistake as its one line, job starts and ends."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cam_studio.benchmarks.serving import app_client, serving_app


def test_the_app_logs_requests_and_mistakes_at_info(tmp_path):
    log = tmp_path / "app.log"
    with serving_app("--log-level", "info", log_file=log) as (url, _):
        client = app_client(url)
        client.predict(example="coffee", methods=["GradCAM"], api_name="/explain")
        with pytest.raises(Exception, match="neither a class index"):
            client.predict(example="coffee", target="not a class", api_name="/explain")
    text = log.read_text()
    assert "INFO cam_studio.requests: explain done in" in text
    assert "INFO cam_studio.requests: explain refused in" in text and "not a class" in text


def test_the_commands_are_quiet_by_default_and_log_at_info(tmp_path):
    def explain(*flags):
        return subprocess.run([sys.executable, "-m", "cam_studio", *flags, "explain",
                               "--backbone", "tiny_resnet", "--weights", "random", "--example",
                               "coffee", "--methods", "GradCAM", "--out", str(tmp_path)],
                              capture_output=True, text=True, timeout=300, check=False)
    quiet = explain()
    assert quiet.returncode == 0 and "cam_studio.commands" not in quiet.stderr
    told = explain("--log-level", "INFO")
    assert told.returncode == 0
    assert "INFO cam_studio.commands: python -m cam_studio explain started" in told.stderr
    assert "explain ended in" in told.stderr and "(exit 0)" in told.stderr
