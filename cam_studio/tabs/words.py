"""The errors' fixes in the page's words: the control that takes each input, as the page labels it.

The engine and ``fooling`` name what to give (``cams.errors``); here each is worded once for the
page (the command line words them as flags, ``cam_studio.commands.runner``). ``public_message``
is the one adapter every tab's error goes through: worded, and without server paths when the
app is shared.
"""

from __future__ import annotations

from cam_studio.tabs.access import ACCESS
from cams.errors import (
    BACKBONE,
    CLASS_NAMES,
    FALSE_CLASS,
    IMAGES,
    INPUT_SIZE,
    LAYER,
    MEAN,
    METHODS,
    STD,
    TARGET,
    WEIGHTS,
    Fix,
    UserInputError,
)

# Each input by the page's label of the control that takes it.
CONTROLS = {BACKBONE: "Backbone", WEIGHTS: "Checkpoint A or B", TARGET: "Target class",
            FALSE_CLASS: "False class", METHODS: "Methods", IMAGES: "Image",
            "name": "Checkpoint name", "init": "Start from",
            "loss": "Objective", "cam": "CAM the SHAM attack supervises", "data": "Data",
            "salience": "Salience folder", "steps": "Steps", "batch": "Batch",
            "size": "Size px", "lr": "Learning rate", "seed": "Seed", "resume": "Resume",
            "limit": "At most N images", "seeds": "Training seeds",
            "training_steps": "Training steps", "pairs": "clean:fooled pairs",
            "backbones": "Backbones", "tables": "Tables",
            CLASS_NAMES: "Class names", INPUT_SIZE: "Input size px", MEAN: "Mean R, G, B",
            STD: "Std R, G, B", LAYER: "Target layer", "opacity": "Heatmap opacity"}
# Where a value is not typed into the control but given otherwise.
GIVEN_OTHERWISE = {WEIGHTS: "upload a weights file under 'Upload your own checkpoints'"}


def page_words(fix: Fix) -> str:
    """A fix as the page says it: the control to change, as it is labelled."""
    control = CONTROLS.get(fix.input or "")
    if control is None:
        return fix.neutral()
    detail = f" ({fix.detail})" if fix.detail else ""
    if fix.value is not None:
        return f"choose {fix.value} in '{control}'{detail}"
    if fix.input in GIVEN_OTHERWISE:
        return GIVEN_OTHERWISE[fix.input] + detail
    return f"change '{control}'" + (f": {fix.detail}" if fix.detail else "")


def public_message(error: UserInputError) -> str:
    """What the page shows for ``error``: in the page's words, server paths hidden when shared."""
    return ACCESS.public(error.worded(page_words))
