"""The standard security headers on every answer of the app (an ASGI middleware Gradio's FastAPI
app is built with): no MIME sniffing, no referrer to other sites, and no framing by other sites
(on a Hugging Face Space, the Space's own page may frame it)."""

from __future__ import annotations

import os
from typing import Any

from starlette.middleware import Middleware

Scope = dict[str, Any]


def security_headers() -> list[tuple[bytes, bytes]]:
    on_a_space = bool(os.environ.get("SPACE_ID"))
    ancestors = "'self' https://huggingface.co https://*.hf.space" if on_a_space else "'self'"
    headers = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
               (b"content-security-policy", f"frame-ancestors {ancestors}".encode())]
    if not on_a_space:
        headers.append((b"x-frame-options", b"SAMEORIGIN"))
    return headers


class SecurityHeaders:
    """Adds ``headers`` to every HTTP answer that does not set them itself."""

    def __init__(self, app: Any, headers: list[tuple[bytes, bytes]]) -> None:
        self.app, self.headers = app, headers

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                given = list(message.get("headers", []))
                names = {name.lower() for name, _ in given}
                message = {**message, "headers": given + [
                    (name, value) for name, value in self.headers if name not in names]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def header_middleware() -> list[Middleware]:
    """For ``launch(app_kwargs={"middleware": …})``."""
    return [Middleware(SecurityHeaders, headers=security_headers())]
