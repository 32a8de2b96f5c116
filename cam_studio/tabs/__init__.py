"""What each tab of the app does, without Gradio: ``compare`` (and ``comparison``, the table and
grid of two checkpoints), ``finetune`` (and ``jobs``, runs in the background), ``evaluate``.

``app.py`` builds the page and wires its events here; the API and the tests call the same
functions. Above ``evaluation``, ``fooling``, the data layer and the engine.
"""
