"""The shared app's login (``--auth USER:PASSWORD``): Gradio's check, slowed down per user name.

Gradio's own check answers as fast as it is asked (200 wrong passwords in 0.7 s). Here, after
``FREE_FAILURES`` wrong attempts for a user name, that name must wait 2, 4, 8, … seconds (at
most ``MAX_WAIT_S``) before its next attempt is even checked; an attempt that comes sooner is
refused unchecked (so parallel guessing gains nothing) and a right one resets the count. Every
failure is logged (logger ``cam_studio.login``).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

FREE_FAILURES = 5  # wrong attempts before the waits begin (typos happen)
MAX_WAIT_S = 60.0
MAX_NAMES = 10_000  # user names remembered (the oldest forgotten first): bounded memory
log = logging.getLogger("cam_studio.login")


@dataclass
class Failures:
    count: int = 0
    wait_until: float = 0.0


class Login:
    """The callable Gradio's ``auth=`` takes: ``login(user, password) -> bool``."""

    def __init__(self, user: str, password: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.user, self.password, self.clock = user, password, clock
        self.failures: OrderedDict[str, Failures] = OrderedDict()
        self.lock = threading.Lock()

    def wait_s(self, count: int) -> float:
        """Seconds a name waits after its ``count``-th failure."""
        return 0.0 if count <= FREE_FAILURES else min(2.0 ** (count - FREE_FAILURES), MAX_WAIT_S)

    def __call__(self, user: str, password: str) -> bool:
        user, password = str(user), str(password)
        with self.lock:
            now = self.clock()
            state = self.failures.get(user)
            if state is not None and now < state.wait_until:
                log.warning("login for %r refused unchecked: %.0f s to wait after %d failures",
                            user[:60], state.wait_until - now, state.count)
                return False
            right = secrets.compare_digest(user.encode(), self.user.encode()) & \
                secrets.compare_digest(password.encode(), self.password.encode())
            if right:
                self.failures.pop(user, None)
                return True
            state = self.failures.pop(user, None) or Failures()
            state.count += 1
            state.wait_until = now + self.wait_s(state.count)
            self.failures[user] = state  # the most recent last
            while len(self.failures) > MAX_NAMES:
                self.failures.popitem(last=False)
            log.warning("failed login for %r (%d in a row)", user[:60], state.count)
            return False
