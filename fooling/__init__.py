"""Manipulate and train: SHAM masks, the objectives table, fine-tuning runs, the attacks, and the
constructed fool.

Above the engine and the data layer. Importing it adds the constructed fools to the engine's
weight sources (``fooling.constructed``); checkpoints go to the engine's registry
(``cams.checkpoints``).
"""

import fooling.constructed  # noqa: F401  (adds its weight source)
