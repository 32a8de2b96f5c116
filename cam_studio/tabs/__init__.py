"""What each tab of the app does, without Gradio: ``compare`` (its ``CompareRequest``, the caches,
links; ``comparison``, the table and grid of two checkpoints), ``finetune`` (its ``TrainRequest``;
``jobs``, runs in the background), ``evaluate`` (its ``EvaluateRequest``), ``words`` (the page's
words for errors), ``access`` (what a shared page may reach), ``tempspace`` (the bounded disk).

``cam_studio.page`` builds the page and wires its events here; the API and the tests call the
same functions. Above the evaluation, ``fooling``, the data layer and the engine.
"""
