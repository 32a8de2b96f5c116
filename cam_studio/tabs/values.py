"""Numbers from the page or the API, checked once: a number or its digits, finite, within range.

A JSON client may send ``"0.5"``, ``0.5``, ``NaN`` or ``1e308`` for any number; each request
type (``CompareRequest``, ``TrainRequest``, ``EvaluateRequest``) reads its numbers through
``number`` so that a wrong one is a one-line error naming the control, never a stack trace or a
black grid.
"""

from __future__ import annotations

import math
from typing import Any

from cams.errors import Fix, UserInputError, shorten


def number(value: Any, field: str, low: float, high: float, integer: bool = False,
           default: float | None = None) -> Any:
    """``value`` as a float (``integer``: an int) in ``[low, high]``; None or blank: ``default``.
    ``field`` names the input (a request's field) in the error's fix."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    fix = Fix(field, f"{'a whole number' if integer else 'a number'} from {plain(low)} to "
                     f"{plain(high)}")
    if isinstance(value, bool):
        raise UserInputError(f"{field.replace('_', ' ')} {value} is not a number", fix)
    try:
        parsed = float(value)
    except (TypeError, ValueError, OverflowError):
        raise UserInputError(f"{field.replace('_', ' ')} {shorten(str(value))!r} is not a number",
                             fix) from None
    if not math.isfinite(parsed) or not low <= parsed <= high or (
            integer and not parsed.is_integer()):
        raise UserInputError(f"{field.replace('_', ' ')} {shorten(str(value))} is out of range",
                             fix)
    return int(parsed) if integer else parsed


def plain(bound: float) -> str:
    """A range's bound as people write it: 10,000,000 and 0.5, not 1e+07."""
    return f"{int(bound):,}" if float(bound).is_integer() else f"{bound:g}"
