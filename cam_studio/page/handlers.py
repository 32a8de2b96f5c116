"""How every event handler of the page is called: its request built once from the page's (or the
API's) values, and its user errors shown once, as one line in the page's words.

    @handler(CompareRequest)
    def explain(request: CompareRequest, progress=gr.Progress()): ...

Gradio calls ``explain`` with the components' values in the request's field order; the handler
receives one typed request. Its signature (what Gradio's API lists, names and defaults) is the
request's fields, then the handler's own extra parameters. A ``UserInputError`` becomes a
``gr.Error`` worded by ``cam_studio.tabs.words`` (the page's controls, no server paths when
shared); the page keeps serving.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import gradio as gr

from cam_studio.tabs.words import public_message
from cams.errors import UserInputError

log = logging.getLogger("cam_studio.requests")


@contextmanager
def logged(name: str) -> Iterator[None]:
    """One request to ``name``: its time (INFO), a user's mistake (INFO, the one line the page
    shows) or an unexpected error with its trace (ERROR); the error goes on to Gradio."""
    started = time.perf_counter()
    try:
        yield
    except UserInputError as error:
        log.info("%s refused in %.2f s: %s", name, time.perf_counter() - started, error)
        raise gr.Error(public_message(error)) from error
    except (gr.Error, GeneratorExit):
        raise
    except Exception:
        log.exception("%s failed after %.2f s", name, time.perf_counter() - started)
        raise
    log.info("%s done in %.2f s", name, time.perf_counter() - started)


def shown_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` with its user errors shown as a one-line ``gr.Error`` (generators too), and
    every call logged (``logged``)."""
    if inspect.isgeneratorfunction(function):
        @functools.wraps(function)
        def streamed(*args: Any, **kwargs: Any) -> Any:
            with logged(function.__name__):
                yield from function(*args, **kwargs)
        return streamed

    @functools.wraps(function)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with logged(function.__name__):
            return function(*args, **kwargs)
    return wrapped


def handler(request_type: type, *, leading: int = 0) -> Callable[[Callable], Callable]:
    """Make ``function(*first, request, *extras)`` a Gradio handler: called with ``leading``
    values of its own, then one value per field of ``request_type`` (built into the request),
    then its extra parameters (e.g. ``progress``); errors shown by ``shown_errors``."""
    fields = dataclasses.fields(request_type)

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        own = list(inspect.signature(function).parameters.values())
        first, extras = own[:leading], own[leading + 1:]

        def arguments(values: tuple[Any, ...]) -> tuple[Any, ...]:
            head, rest = values[:leading], values[leading:]
            return (*head, request_type(*rest[:len(fields)]), *rest[len(fields):])

        if inspect.isgeneratorfunction(function):
            def called(*values: Any, **keywords: Any) -> Any:
                yield from function(*arguments(values), **keywords)
        else:
            def called(*values: Any, **keywords: Any) -> Any:
                return function(*arguments(values), **keywords)
        shown = shown_errors(functools.wraps(function)(called))
        shown.__signature__ = inspect.Signature([
            *first, *(inspect.Parameter(field.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        default=field.default) for field in fields), *extras])
        return shown
    return decorate


def client_present() -> Callable[[], bool]:
    """Called in a handler: a check whether the client that asked still waits for it. Gradio
    marks a request's event dead when its page closes or its API client goes, and drops it
    from its running jobs when it is cancelled, but a function already running runs on; a long
    job asks this at its progress reports."""
    from gradio.context import LocalContext

    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)

    def running() -> Any:
        for job in getattr(getattr(blocks, "_queue", None), "active_jobs", None) or ():
            for event in job or ():
                if getattr(event, "_id", None) == event_id:
                    return event
        return None

    asked = running()  # None outside a queued event: nobody to miss

    def present() -> bool:
        # Gone: its client left (the event marked dead) or it was cancelled (no longer active).
        return asked is None or (bool(asked.alive) and running() is asked)
    return present


def while_connected(progress: Callable[..., Any]) -> Callable[..., Any]:
    """``progress`` (a ``gr.Progress``) that first stops the job, in one line, once the client
    that asked has gone or cancelled it: its worker and its place in the queue go to the next
    request."""
    present = client_present()

    def report(*args: Any, **kwargs: Any) -> Any:
        if not present():
            raise UserInputError("stopped: cancelled, or the page or client that asked for it "
                                 "has gone")
        return progress(*args, **kwargs)
    return report
