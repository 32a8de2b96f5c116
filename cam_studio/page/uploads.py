"""Uploads kept inside the app's bounded temporary space (an ASGI middleware around Gradio's
upload route): each upload first sweeps the space (``cam_studio.tabs.tempspace``; at most one
sweep every few seconds) and is refused, in one line, while the space is over its ceiling. Files
younger than the sweep's in-use time are never deleted, so without the ceiling a burst of
uploads (before: 4.95 GB in 37 s) would outrun any sweep.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.middleware import Middleware
from starlette.responses import JSONResponse

from cam_studio.tabs.tempspace import app_space

log = logging.getLogger("cam_studio.requests")
CEILING_MB = 1024.0  # the space's size above which uploads wait (uploads are 200 MB at most)


class UploadGuard:
    """Sweeps before each upload and refuses one while the space holds over ``ceiling_mb``."""

    def __init__(self, app: Any, ceiling_mb: float) -> None:
        self.app, self.ceiling_mb = app, ceiling_mb

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (scope["type"] != "http" or scope.get("method") != "POST"
                or not scope.get("path", "").endswith("/upload")):
            await self.app(scope, receive, send)
            return
        space = app_space()
        await asyncio.to_thread(space.sweep)
        held = await asyncio.to_thread(space.size_mb)
        if held > self.ceiling_mb:
            log.warning("an upload was refused: the temporary space holds %.0f MB", held)
            refused = JSONResponse(status_code=503, content={
                "detail": "the server's temporary space is full of recent uploads: try again "
                          "in a minute"})
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)


def upload_middleware(ceiling_mb: float = CEILING_MB) -> list[Middleware]:
    """For ``launch(app_kwargs={"middleware": …})``."""
    return [Middleware(UploadGuard, ceiling_mb=ceiling_mb)]
