"""A fair queue: one browser session (one page, or one API client) holds at most a few places in
the app's queue, so a single tab or script cannot fill it and leave everyone else with "Queue is
full" (before: one tab filled the 64 places in 1.9 s).

Gradio keeps, per session, the events it has accepted and not yet answered; ``cap_per_session``
refuses a new one above the cap, in one line, through Gradio's own "queue full" answer.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("cam_studio.requests")

# The whole queue, and one session's share of it: a page opening asks for about four things at
# once (a classroom of 30 opening together is ~120), and an ordinary page rarely holds more than
# six (a comparison, its slider, a run or an evaluation it follows).
QUEUE_SIZE, MAX_QUEUED_PER_USER = 256, 16


def cap_per_session(queue: Any, most: int) -> None:
    """Make ``queue`` (a Gradio ``Queue``) refuse a session's request while it already has
    ``most`` waiting or running."""
    push = queue.push

    async def capped(body: Any, request: Any, username: str | None = None) -> tuple:
        pending = getattr(queue, "pending_event_ids_session", None) or {}  # Gradio's own record
        held = len(pending.get(body.session_hash, ()))
        if held >= most:
            log.info("a session holding %d requests was refused another", held)
            return (False, f"this page already has {held} requests waiting (at most {most}): wait "
                    "for them to finish", "queue_full")
        return await push(body=body, request=request, username=username)

    queue.push = capped
