"""Manipulate and train: SHAM masks, salience-guided losses, fine-tuning, the checkpoint registry.

``python -m fooling sham|train|list`` (see ``fooling.cli``).
"""
