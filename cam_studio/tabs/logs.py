"""The app's and the commands' logging: Python ``logging`` to stderr, quiet by default.

Loggers are named by what they watch (``cam_studio.requests``: every page or API request with
its time and any error with its trace; ``cam_studio.jobs``: training runs; ``cam_studio.login``:
failed logins; ``cam_studio.page``: start-up). ``--log-level`` on ``python app.py`` and on
``python -m cam_studio`` chooses how much is shown.
"""

from __future__ import annotations

import logging

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def start_logging(level: str = "WARNING") -> None:
    """Log the project's loggers at ``level`` to stderr (other libraries stay at WARNING)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    project = logging.getLogger("cam_studio")
    project.handlers[:] = [handler]
    project.setLevel(level)
    project.propagate = False
