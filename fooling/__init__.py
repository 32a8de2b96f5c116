"""Manipulate and train: SHAM masks, the objectives table, fine-tuning runs, the fooling check.

Above the engine and the data layer. ``python -m fooling sham|train|list|check|bench`` (see
``fooling.cli``); checkpoints go to the engine's registry (``cams.checkpoints``).
"""
