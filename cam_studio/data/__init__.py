"""The data layer: where images, labels and salience maps come from.

Above the engine (``cams``), below ``fooling`` and ``evaluation``: synthetic ground-truth tasks,
the photos the installed packages ship and crops of them, ImageFolder trees with salience maps,
the evaluation's image sources, the seeded order of everything, and which torchrun process
handles which images.
"""
