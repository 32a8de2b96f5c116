"""The one exception type a user sees: what was wrong, and how to fix it in words no front end owns.

The engine never names a command-line flag or a control of the page. A ``Fix`` names the *input*
to change (``WEIGHTS``, ``LAYER``, … below, or a setting of a config such as ``lr``) and, where
one value fixes it, that value; each front end words a fix once (the command line as
``--weights FILE``, the app as the control that takes it). ``str(error)`` is a plain sentence
for everyone else (a notebook, a log).

    raise UserInputError(f"no weights for backbone {name} offline",
                         Fix(WEIGHTS, "a .safetensors or state-dict file"), Fix(WEIGHTS, value="random"))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# The inputs the engine's own errors ask for (a config's settings are named by their field).
BACKBONE, WEIGHTS, LAYER, INPUT_SIZE, MEAN, STD, CLASS_NAMES = (
    "backbone", "weights", "layer", "input_size", "mean", "std", "class_names")
TARGET, FALSE_CLASS, METHODS, DEVICE, BATCH_SIZE, IMAGES = (
    "target", "false_class", "methods", "device", "batch_size", "images")
# How the neutral sentence names each (a setting of a config: its field name, underscores as
# spaces).
NAMES = {BACKBONE: "the backbone", WEIGHTS: "the weights", LAYER: "the target layer",
         INPUT_SIZE: "the input size", MEAN: "the normalisation mean",
         STD: "the normalisation standard deviation", CLASS_NAMES: "the class names",
         TARGET: "the target class", FALSE_CLASS: "the false class", METHODS: "the methods",
         DEVICE: "the device", BATCH_SIZE: "the batch size", IMAGES: "the images"}


@dataclass(frozen=True)
class Fix:
    """One way out of a user's mistake: give ``input`` (``detail`` says what it should be) or,
    with ``value``, give it that value. ``input`` None: an action outside the tool (``detail``
    says it, e.g. "downscale the image first")."""

    input: str | None
    detail: str = ""
    value: str | None = None

    def neutral(self) -> str:
        """The fix in plain words: "give the weights (a .safetensors file)", "use the weights
        'random'"."""
        if self.input is None:
            return self.detail
        name = NAMES.get(self.input, f"the {self.input.replace('_', ' ')}")
        if self.value is not None:
            return f"use {name} {self.value!r}" + (f" ({self.detail})" if self.detail else "")
        return f"give {name}" + (f" ({self.detail})" if self.detail else "")


Wording = Callable[[Fix], str]  # a front end's words for one fix


class UserInputError(ValueError):
    """Bad input from a user (file, name, index, weights, setting): ``problem`` says what was
    wrong and ``fixes`` the ways out (a plain string is an action outside the tool)."""

    def __init__(self, problem: str, *fixes: Fix | str):
        self.problem = problem
        self.fixes = tuple(Fix(None, fix) if isinstance(fix, str) else fix for fix in fixes)
        super().__init__(self.worded(Fix.neutral))

    def worded(self, wording: Wording) -> str:
        """The message with each fix in ``wording``'s words: "problem: fix, fix or fix"."""
        words = [wording(fix) for fix in self.fixes]
        if not words:
            return self.problem
        joined = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
        return f"{self.problem}: {joined}"

    def with_fixes(self, *fixes: Fix | str) -> UserInputError:
        """The same problem with other fixes (a layer above knows a better way out)."""
        return UserInputError(self.problem, *fixes)


def shorten(text: str, limit: int = 60) -> str:
    """What a user gave, as an error repeats it: at most ``limit`` characters (a 300-character
    name or a 23-digit number would bury the sentence)."""
    return text if len(text) <= limit else text[:limit - 1] + "…"
