"""The Evaluate tab: its layout, and its events wired to ``cam_studio.tabs.evaluate``."""

from __future__ import annotations

import dataclasses

import gradio as gr

from cam_studio.evaluation.tables import TABLES
from cam_studio.page.compare import none_is_default
from cam_studio.page.handlers import handler, while_connected
from cam_studio.tabs import evaluate as evaluation
from cam_studio.tabs.evaluate import EvaluateRequest


@handler(EvaluateRequest)
def run_evaluation(request: EvaluateRequest, progress=gr.Progress()):  # noqa: B008 (Gradio idiom)
    """The tab's evaluation; every parameter has a default (``None`` = the tab's start value).
    It stops when its client goes (its records kept: the same request resumes from them)."""
    return evaluation.evaluate_from_page(request, while_connected(progress))


def refresh_pairs(pairs):
    options = evaluation.pair_options()
    return gr.update(choices=options, value=[pair for pair in pairs or [] if pair in options])


def build_evaluate_tab(page: gr.Blocks) -> None:
    """Evaluate: the papers' tables on the chosen images, backbones and checkpoint pairs."""
    start_values = evaluation.START
    with gr.Row():
        with gr.Column(scale=1, min_width=340):
            source = gr.Dropdown(list(evaluation.IMAGE_SOURCES), value=start_values.images,
                                 label="Images")
            folder = gr.Textbox(label="Server folder of images (for 'a server folder')")
            backbones = none_is_default(gr.CheckboxGroup(
                evaluation.backbone_options(), value=evaluation.backbone_options()[:1],
                label="Backbones (similarity, run time, MOD/VID)"))
            pairs = gr.Dropdown(evaluation.pair_options(), value=evaluation.pair_options()[:1],
                                multiselect=True, label="clean:fooled pairs (susceptibility)")
            tables = none_is_default(gr.CheckboxGroup(
                list(TABLES), value=start_values.tables,
                label="Tables (training trains 4 objectives × seeds: slow)"))
            with gr.Row():
                limit = gr.Number(start_values.limit, label="At most N images", precision=0,
                                  minimum=1)
                seeds = gr.Number(start_values.seeds, label="Training seeds", precision=0,
                                  minimum=1)
                steps = gr.Number(start_values.training_steps, label="Training steps",
                                  precision=0, minimum=1)
            scorecam = gr.Checkbox(False, label="Include ScoreCAM (slow: about 20 s per image "
                                                "and checkpoint on a 2-core CPU)")
            with gr.Row():
                start = gr.Button("Run the evaluation", variant="primary")
                cancel = gr.Button("Cancel", variant="stop")
        with gr.Column(scale=2):
            report = gr.Markdown("Choose what to run; the tables appear here.")
            plots = gr.Gallery(label="Plots", columns=2, height=420, object_fit="contain")
            archive = gr.File(label="The report folder (zip): Markdown, CSV, PNG, per-image "
                                    "records")
    components = {"source": source, "folder": folder, "backbones": backbones, "pairs": pairs,
                  "tables": tables, "limit": limit, "seeds": seeds, "training_steps": steps,
                  "scorecam": scorecam}
    inputs = [components[field.name] for field in dataclasses.fields(EvaluateRequest)]
    run = start.click(run_evaluation, inputs, [report, plots, archive], api_name="evaluate",
                      concurrency_limit=1)
    # The run stops at its next progress report (its records kept: running it again resumes).
    cancel.click(None, None, None, cancels=[run], api_visibility="private")
    page.load(refresh_pairs, pairs, pairs, api_visibility="private")
