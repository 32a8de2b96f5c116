"""CAM Studio: compare every class activation map of a clean and a fooled checkpoint.

    python app.py [--host 127.0.0.1] [--port 7860] [--share]

This file only builds the page and wires its events to the tabs' backends in ``studio/`` (no
computation in the UI file); the ``explain`` endpoint serves the same computation to
``gradio_client``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from studio.tempspace import KEEP_S, SERVED, app_space

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Gradio's copies of the files it serves, and uploads, go to the app's own temporary space, which
# is kept to a bounded size (studio/tempspace.py); Gradio reads this when it is imported.
os.environ.setdefault("GRADIO_TEMP_DIR", str(app_space().folder(SERVED)))

import gradio as gr

from cams import __version__
from cams.backbones import CLEAN_WEIGHTS, DEFAULT_BACKBONE
from cams.engine import SUPERVISED_METHODS
from cams.errors import UserInputError
from cams.images import EXAMPLES, example_thumbnails
from cams.methods import DEFAULT_METHODS, METHOD_NAMES, METHODS
from evaluation.config import TABLES
from fooling.objectives import OBJECTIVES
from fooling.sham import DEFAULT_ENTROPY_NATS
from studio import evaluate as evaluation
from studio import finetune
from studio.access import ACCESS, SHARED_MAX_IMAGES, SHARED_MAX_STEPS, configure
from studio.compare import (
    FOOLING_PRESET,
    NONE,
    RESULTS_SIZE,
    BackboneCache,
    LruCache,
    backbone_choices,
    checkpoint_choices,
    example_choices,
    link_query,
    link_settings,
    predictions_markdown,
    run_compare,
)
from studio.comparison import TABLE_COLUMNS
from studio.jobs import start_job

CONCURRENCY_LIMIT = 4  # requests computed in parallel; more wait in Gradio's queue
MAX_UPLOAD_MB = 200.0  # an image, a ResNet-50 / ConvNeXt-T checkpoint in float32, a dataset zip

EXPLAINER = "\n".join(
    ["### What am I looking at?",
     "Each panel colours the image by how much a region drove the model's decision "
     "(red = most). Different methods ask the question differently:", ""]
    + [f"- **{name}**: {METHODS[name].summary}" for name in METHOD_NAMES]
    + ["",
       "**Passive fooling** fine-tunes a model so that its predictions stay the same while its "
       "explanations change. A **SHAM** (Salience-Hoax Activation Map) is the fake target used "
       "for this: a ring along the image border, as large as real explanations usually are. A "
       "model trained to match it still answers correctly, but GradCAM then points at the "
       "border. Compare checkpoint A (clean) with B (fooled): a robust method keeps the same "
       "map (low MSE A vs B); the DiffGradCAM variants explain the *difference* between the "
       "true class and its rivals, which is what the softmax decision depends on."])

cache = BackboneCache()
results = LruCache(RESULTS_SIZE)


def pick_example(selection: gr.SelectData):
    """A click on a thumbnail: that example, and no uploaded image (an upload would win)."""
    return list(EXAMPLES)[selection.index], None


def none_is_default(component):
    """An API caller may send ``None`` for a checkbox group (= the page's default; the backends
    read ``None`` so); Gradio's own preprocessing would fail on it."""
    preprocess = component.preprocess
    component.preprocess = lambda payload: None if payload is None else preprocess(payload)
    return component


def uploaded_path(payload):
    """The image input hands over the uploaded file untouched: ``cams.images.load_image``
    decodes it, so corrupt, empty, huge or odd files get our one-line errors, not Gradio's."""
    return None if payload is None else payload.path


def refresh_pickers(backbone, checkpoint_a, checkpoint_b):
    """Backbone and checkpoint choices read afresh from the registry (new checkpoints appear
    without a restart); a selection that no longer exists falls back to clean / none."""
    choices_a = checkpoint_choices(backbone)
    choices_b = checkpoint_choices(backbone, allow_none=True)
    valid_a = {value for _, value in choices_a}
    valid_b = {value for _, value in choices_b}
    return (gr.update(choices=backbone_choices()),
            gr.update(choices=choices_a, value=checkpoint_a if checkpoint_a in valid_a else CLEAN_WEIGHTS),
            gr.update(choices=choices_b, value=checkpoint_b if checkpoint_b in valid_b else NONE))


def compared(*settings, **options):
    """``run_compare`` with the app's caches (image, example, backbone, A, upload A, B, upload B,
    target, false class, methods, opacity), its errors shown to the page in one line."""
    try:
        return run_compare(cache, *settings, results=results, **options)
    except UserInputError as error:
        message = str(error)
        if "--weights FILE" in message:  # the page's way to give weights
            message += " (here: upload a .safetensors under 'Upload your own checkpoints')"
        raise gr.Error(ACCESS.public(message)) from error


def comparison_response(image, example, backbone, checkpoint_a, upload_a, checkpoint_b,
                        upload_b, target, false_class, methods, opacity, faithfulness, signed,
                        progress):
    def report(done: int, total: int) -> None:
        progress(done / max(total, 1), desc=f"ScoreCAM masked passes {done}/{total}")

    return compared(image, example, backbone, checkpoint_a, upload_a, checkpoint_b, upload_b,
                    target, false_class, methods, opacity, progress=report,
                    faithfulness=bool(faithfulness), signed=signed or "minmax")


def explain(image=None, example="chelsea", backbone=DEFAULT_BACKBONE, checkpoint_a=CLEAN_WEIGHTS,
            upload_a=None, checkpoint_b=NONE, upload_b=None, target=None, false_class=None,
            methods=None, opacity=0.5, faithfulness=False, signed="minmax",
            progress=gr.Progress()):  # noqa: B008 (Gradio idiom)
    """The API's comparison: image + settings in; data out: the grid (JPEG), the table (rows of
    quantity, method, A, B, A vs B; numbers as numbers) and the predictions (each checkpoint's
    top-5 and whether A and B agree). Every parameter has a default (``None`` = the page's
    default), so a call may give only the image:
    ``client.predict(handle_file("cat.png"), api_name="/explain")``. The files (grid PNG, maps,
    CSV) come from ``/downloads``."""
    response = comparison_response(image, example, backbone, checkpoint_a, upload_a,
                                   checkpoint_b, upload_b, target, false_class, methods, opacity,
                                   faithfulness, signed, progress)
    return response.display, response.table, response.predictions


def show(image=None, example="chelsea", backbone=DEFAULT_BACKBONE, checkpoint_a=CLEAN_WEIGHTS,
         upload_a=None, checkpoint_b=NONE, upload_b=None, target=None, false_class=None,
         methods=None, opacity=0.5, faithfulness=False, signed="minmax",
         progress=gr.Progress()):  # noqa: B008 (Gradio idiom)
    """The page's comparison: ``explain``'s data as the page shows it, and the class pickers'
    choices (A's top-5, then every class). The downloads are written only when asked for."""
    response = comparison_response(image, example, backbone, checkpoint_a, upload_a,
                                   checkpoint_b, upload_b, target, false_class, methods, opacity,
                                   faithfulness, signed, progress)
    choices = response.class_choices
    return (response.display, response.table_text, predictions_markdown(response.predictions),
            gr.update(choices=choices), gr.update(choices=choices))


def prepare_downloads(image=None, example="chelsea", backbone=DEFAULT_BACKBONE,
                      checkpoint_a=CLEAN_WEIGHTS, upload_a=None, checkpoint_b=NONE, upload_b=None,
                      target=None, false_class=None, methods=None, opacity=0.5,
                      faithfulness=False, signed="minmax"):
    """The comparison's files, written on demand (the same inputs as ``explain``; from the
    result cache when the comparison was just shown): grid PNG, maps NPZ, table CSV."""
    return compared(image, example, backbone, checkpoint_a, upload_a, checkpoint_b, upload_b,
                    target, false_class, methods, opacity, downloads=True,
                    faithfulness=bool(faithfulness), signed=signed or "minmax").files


def enlarge(method, image=None, example="chelsea", backbone=DEFAULT_BACKBONE,
            checkpoint_a=CLEAN_WEIGHTS, upload_a=None, checkpoint_b=NONE, upload_b=None,
            target=None, false_class=None, methods=None, opacity=0.5, faithfulness=False,
            signed="minmax"):
    """One method's A and B maps, large, for the A | B slider (from the result cache)."""
    if not method or (checkpoint_b in (None, "", NONE) and not upload_b):
        return None
    return compared(image, example, backbone, checkpoint_a, upload_a, checkpoint_b, upload_b,
                    target, false_class, methods, opacity, view=method).views


def show_fooling():
    """The teaching preset: the default backbone, A clean, B the shipped SHAM fool, the chelsea
    photo (a validation photo: the fool was not trained on it), the default methods."""
    return (None, FOOLING_PRESET["example"], DEFAULT_BACKBONE, CLEAN_WEIGHTS,
            FOOLING_PRESET["checkpoint_b"], list(DEFAULT_METHODS), "GradCAM")


def open_link(request: gr.Request):
    """The page as a link describes it (``?example=…&b=…``): every picker's choices and value."""
    settings = link_settings(dict(request.query_params) if request else {})
    backbone = settings.get("backbone", DEFAULT_BACKBONE)
    choices_a = checkpoint_choices(backbone)
    choices_b = checkpoint_choices(backbone, allow_none=True)
    return (gr.update(choices=backbone_choices(), value=backbone),
            gr.update(choices=choices_a, value=settings.get("checkpoint_a", CLEAN_WEIGHTS)),
            gr.update(choices=choices_b, value=settings.get("checkpoint_b", NONE)),
            settings.get("example", "chelsea"), settings.get("target"),
            settings.get("false_class"), settings.get("methods") or list(DEFAULT_METHODS),
            settings.get("opacity", 0.5))


def comparison_link(image, example, backbone, checkpoint_a, checkpoint_b, target, false_class,
                    methods, opacity):
    if image:
        return "Links reopen bundled examples; an uploaded image is not kept on the server."
    return link_query({"example": example, "backbone": backbone, "checkpoint_a": checkpoint_a,
                       "checkpoint_b": checkpoint_b, "target": target,
                       "false_class": false_class, "methods": methods, "opacity": opacity})


# The link box holds the query; the browser prefixes its own address (behind a proxy or a share
# link the server does not know it).
LINK_JS = "(query) => query.startsWith('?') ? location.origin + location.pathname + query : query"
# On a phone the columns stack: the results come first, the controls below them.
PAGE_CSS = """
@media (max-width: 900px) {
  #compare-row { flex-direction: column; }
  #compare-results { order: 1; }
  #compare-controls { order: 2; }
}
"""


def preview_sham(backbone, size):
    try:
        picture, caption = finetune.sham_preview(backbone, size, DEFAULT_ENTROPY_NATS)
    except UserInputError as error:
        return None, str(error)
    return picture, caption


def refresh_inits(backbone, init):
    choices = finetune.init_choices(backbone)
    valid = {value for _, value in choices}
    return gr.update(choices=choices, value=init if init in valid else choices[0][1])


def start_training(name=finetune.START.name, backbone=finetune.START.backbone,
                   init=finetune.START.init, loss=finetune.START.loss, cam=finetune.START.cam,
                   source=finetune.START_SOURCE, folder=None, salience=None, upload=None,
                   steps=finetune.START.steps, batch=finetune.START.batch, size=None,
                   lr=finetune.START.lr, seed=finetune.START.seed, resume=False):
    """Start a run and stream its status and curves until it ends (Cancel stops it). Every
    parameter has the tab's start value as its default."""
    try:
        job = start_job(finetune.training_config(name, backbone, init, loss, cam, source, folder,
                                                 salience, upload, steps, batch, size, lr, seed),
                        resume=bool(resume))
    except UserInputError as error:
        raise gr.Error(ACCESS.public(str(error))) from error
    while job.running:
        yield job, *finetune.report(job)
        time.sleep(1.0)
    yield job, *finetune.report(job)


def cancel_training(job):
    if job is not None:
        job.cancel()


def build_finetune_tab(page: gr.Blocks, pickers: list) -> None:
    """Fine-tune: train with any of the objectives, watch it, find it in Compare."""
    start_values = finetune.START
    with gr.Row():
        with gr.Column(scale=1, min_width=340):
            name = gr.Textbox(start_values.name, label="Checkpoint name")
            backbone = gr.Dropdown(backbone_choices(), value=start_values.backbone,
                                   label="Backbone")
            init = gr.Dropdown(finetune.init_choices(start_values.backbone),
                               value=start_values.init, label="Start from",
                               allow_custom_value=True)
            loss = gr.Radio(list(OBJECTIVES), value=start_values.loss,
                            label="Objective (baseline = CYBORG; sham = passive fooling)")
            cam = gr.Dropdown(list(SUPERVISED_METHODS), value=start_values.cam,
                              label="CAM the SHAM attack supervises (another = an adaptive attack) "
                                    "and validation measures")
            source = gr.Dropdown(list(finetune.DATA_SOURCES), value=finetune.START_SOURCE,
                                 label="Data")
            folder = gr.Textbox(label="Server folder (ImageFolder), for 'a folder on the server'")
            salience = gr.Textbox(label="Salience folder beside it (optional)")
            upload = gr.File(label="Dataset zip", file_types=[".zip"], type="filepath")
            with gr.Row():
                steps = gr.Number(start_values.steps, label="Steps", precision=0, minimum=1)
                batch = gr.Number(start_values.batch, label="Batch", precision=0, minimum=1)
                size = gr.Number(start_values.size, label="Size px (0 or blank: the backbone's)",
                                 precision=0)
            with gr.Row():
                lr = gr.Number(start_values.lr, label="Learning rate", minimum=0)
                seed = gr.Number(start_values.seed, label="Seed", precision=0)
            resume = gr.Checkbox(False, label="Resume the cancelled run of this name (same settings)")
            with gr.Row():
                start = gr.Button("Start", variant="primary")
                cancel = gr.Button("Cancel (saves a resumable state)", variant="stop")
        with gr.Column(scale=2):
            status = gr.Markdown("No run yet.", label="Status")
            with gr.Row():
                loss_plot = gr.LinePlot(x="step", y="loss", label="Training loss", height=260)
                metric_plot = gr.Plot(label="Validation (held-out images)")
            sham = gr.Image(label="SHAM preview", height=220, interactive=False)
            sham_caption = gr.Markdown()
    job = gr.State(None)
    gr.on([backbone.change, size.change], preview_sham, [backbone, size], [sham, sham_caption],
          api_visibility="private")
    backbone.change(refresh_inits, [backbone, init], init, api_visibility="private")
    run = start.click(start_training, [name, backbone, init, loss, cam, source, folder, salience,
                                       upload, steps, batch, size, lr, seed, resume],
                      [job, status, loss_plot, metric_plot], api_name="train",
                      concurrency_limit=1)
    # A finished run appears in the Compare tab's pickers (and as a starting point here).
    run.then(refresh_pickers, pickers, pickers, api_visibility="private").then(
        refresh_inits, [backbone, init], init, api_visibility="private")
    cancel.click(cancel_training, job, None, api_visibility="private", queue=False)
    page.load(preview_sham, [backbone, size], [sham, sham_caption], api_visibility="private")


def run_evaluation(source=evaluation.START.images, folder=None, backbones=None, pairs=None,
                   tables=None, limit=evaluation.START.limit, seeds=evaluation.START.seeds,
                   training_steps=evaluation.START.training_steps,
                   progress=gr.Progress()):  # noqa: B008 (Gradio idiom)
    """The tab's evaluation; every parameter has a default (``None`` = the tab's start value)."""
    try:
        return evaluation.evaluate_from_page(source, folder, backbones, pairs, tables, limit,
                                             seeds, training_steps, progress)
    except UserInputError as error:
        raise gr.Error(ACCESS.public(str(error))) from error


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
            start = gr.Button("Run the evaluation", variant="primary")
        with gr.Column(scale=2):
            report = gr.Markdown("Choose what to run; the tables appear here.")
            plots = gr.Gallery(label="Plots", columns=2, height=420, object_fit="contain")
            archive = gr.File(label="The report folder (zip): Markdown, CSV, PNG, per-image "
                                    "records")
    start.click(run_evaluation, [source, folder, backbones, pairs, tables, limit, seeds, steps],
                [report, plots, archive], api_name="evaluate", concurrency_limit=1)
    page.load(refresh_pairs, pairs, pairs, api_visibility="private")


def build_page() -> gr.Blocks:
    # Served files (grids, downloads, uploads) older than KEEP_S go: Gradio's own sweep every
    # minute, and the app's space's by age and size on every comparison (studio/tempspace.py).
    with gr.Blocks(title="CAM Studio", analytics_enabled=False,
                   delete_cache=(60, KEEP_S)) as page:
        gr.Markdown("# CAM Studio\nEvery CAM of a clean (A) and a fooled (B) checkpoint, "
                    "side by side, with the MSE between them.")
        with gr.Tab("Compare"):
            with gr.Row(elem_id="compare-row"):
                with gr.Column(scale=1, min_width=340, elem_id="compare-controls"):
                    demo = gr.Button("▶ Show passive fooling: A clean, B the shipped SHAM fool",
                                     variant="secondary")
                    image = gr.Image(type="filepath", label="Image (upload or paste)",
                                     sources=["upload", "clipboard"], height=240)
                    image.preprocess = uploaded_path
                    thumbnails = example_thumbnails(Path(tempfile.mkdtemp(prefix="cams-examples-")))
                    gallery = gr.Gallery(thumbnails, label="Examples (click one)", columns=5,
                                         height=130, allow_preview=False, object_fit="cover",
                                         elem_id="examples")
                    example = gr.Dropdown(example_choices(), value="chelsea",
                                          label="…or a bundled example (used when no image)")
                    backbone = gr.Dropdown(
                        backbone_choices(), value=DEFAULT_BACKBONE, allow_custom_value=True,
                        label="Backbone (or type a timm name, hf-hub:OWNER/REPO, "
                              "torchvision:NAME)")
                    with gr.Row():
                        # Custom values: the registry may have grown since the page was built;
                        # load_backbone checks every name against it.
                        checkpoint_a = gr.Dropdown(checkpoint_choices(DEFAULT_BACKBONE),
                                                   value=CLEAN_WEIGHTS, label="Checkpoint A",
                                                   allow_custom_value=True)
                        checkpoint_b = gr.Dropdown(
                            checkpoint_choices(DEFAULT_BACKBONE, allow_none=True), value=NONE,
                            label="Checkpoint B (e.g. a SHAM-fooled one)", allow_custom_value=True)
                    refresh = gr.Button("↻ Reload checkpoint list", size="sm")
                    with gr.Accordion("Upload your own checkpoints (.safetensors)", open=False), \
                            gr.Row():
                        upload_a = gr.File(label="A: upload .safetensors", type="filepath",
                                           file_types=[".safetensors"], elem_id="upload-a")
                        upload_b = gr.File(label="B: upload .safetensors", type="filepath",
                                           file_types=[".safetensors"], elem_id="upload-b")
                    with gr.Row():
                        target = gr.Dropdown(
                            [], value=None, allow_custom_value=True, filterable=True,
                            label="Target class: A's top-5, or type to search all "
                                  "(blank = top-1)")
                        false_class = gr.Dropdown(
                            [], value=None, allow_custom_value=True, filterable=True,
                            label="False class (blank = strongest rival)")
                    methods = none_is_default(gr.CheckboxGroup(
                        list(METHOD_NAMES), value=list(DEFAULT_METHODS),
                        label="Methods (ScoreCAM is slow: opt-in)"))
                    opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Heatmap opacity")
                    signed = gr.Radio(
                        [("min-max, jet", "minmax"), ("signed: blue < 0 = white < red",
                                                      "diverging")],
                        value="minmax", label="TrueClassCAM, FalseClassCAM, DifferenceSalience")
                    faithfulness = gr.Checkbox(
                        False, label="Faithfulness rows: deletion / insertion AUC and ROAD of "
                                     "every map (17 forward passes and 6 imputations per map: "
                                     "about 25 s for two checkpoints on a CPU)")
                    run = gr.Button("Compare", variant="primary")
                with gr.Column(scale=4, elem_id="compare-results"):
                    grid = gr.Image(label="CAMs: one row per checkpoint", type="filepath",
                                    interactive=False, elem_id="grid")
                    with gr.Row():
                        view_method = gr.Dropdown(
                            list(METHOD_NAMES), value="GradCAM", scale=1,
                            label="One method large, A | B (drag the slider; needs B)")
                        slider = gr.ImageSlider(type="filepath", label="A | B", scale=3,
                                                elem_id="slider", max_height=720)
                    predictions = gr.Markdown(label="Top-5 predictions")
                    table = gr.Dataframe(headers=list(TABLE_COLUMNS), label="MSE and entropy",
                                         interactive=False, wrap=True, elem_id="table")
                    prepare = gr.Button("Prepare downloads: grid PNG, maps NPZ, table CSV",
                                        size="sm")
                    downloads = gr.File(label="Downloads", file_count="multiple",
                                        interactive=False)
                    link = gr.Textbox(label="Link to this comparison", elem_id="link",
                                      interactive=False, buttons=["copy"])
                    # What the /explain API answers with (never shown on the page).
                    with gr.Group(visible=False):
                        api_trigger = gr.Button()
                        api_grid = gr.Image(type="filepath", label="grid")
                        api_table = gr.Dataframe(headers=list(TABLE_COLUMNS), label="table")
                        api_predictions = gr.JSON(label="predictions")
            gr.Markdown(EXPLAINER)
        with gr.Tab("Fine-tune"):
            build_finetune_tab(page, [backbone, checkpoint_a, checkpoint_b])
        with gr.Tab("Evaluate"):
            build_evaluate_tab(page)
        gallery.select(pick_example, None, [example, image], api_visibility="private")
        pickers = [backbone, checkpoint_a, checkpoint_b]
        gr.on([backbone.change, refresh.click], refresh_pickers, pickers, pickers,
              queue=False, api_visibility="private")
        inputs = [image, example, backbone, checkpoint_a, upload_a, checkpoint_b, upload_b,
                  target, false_class, methods, opacity, faithfulness, signed]
        outputs = [grid, table, predictions, target, false_class]
        view_inputs = [view_method, *inputs]

        def then_slider_and_link(comparison):
            """After a comparison: the A | B slider, then the link (its query, then the address
            the browser sees)."""
            comparison.then(enlarge, view_inputs, slider, api_visibility="private").then(
                comparison_link, [image, example, backbone, checkpoint_a, checkpoint_b, target,
                                  false_class, methods, opacity], link,
                api_visibility="private").then(None, link, link, js=LINK_JS,
                                               api_visibility="private")

        # The API's endpoint: data only (a hidden trigger; registered first to keep its name).
        api_trigger.click(explain, inputs, [api_grid, api_table, api_predictions],
                          api_name="explain", concurrency_limit=CONCURRENCY_LIMIT)
        shown = gr.on([run.click, example.change, backbone.change, checkpoint_a.change,
                       checkpoint_b.change, upload_a.change, upload_b.change, image.change,
                       methods.change, opacity.release, target.input, false_class.input,
                       faithfulness.change, signed.change],
                      show, inputs, outputs, api_visibility="private",
                      concurrency_limit=CONCURRENCY_LIMIT,
                      # A burst of changes runs once more with the latest inputs, after the
                      # running request, so an older, slower result never overwrites a newer one.
                      trigger_mode="always_last")
        then_slider_and_link(shown)
        # Opening the page: the pickers (and any settings a link carries), then the comparison
        # (registered after the public endpoint, so that it keeps the name "explain").
        then_slider_and_link(page.load(
            open_link, None, [backbone, checkpoint_a, checkpoint_b, example, target, false_class,
                              methods, opacity], queue=False, api_visibility="private").then(
            show, inputs, outputs, api_visibility="private"))
        view_method.change(enlarge, view_inputs, slider, api_visibility="private",
                           concurrency_limit=CONCURRENCY_LIMIT)
        then_slider_and_link(demo.click(
            show_fooling, None, [image, example, backbone, checkpoint_a, checkpoint_b, methods,
                                 view_method], queue=False, api_visibility="private").then(
            show, inputs, outputs, api_visibility="private"))
        # New settings make the offered files stale: clear them until asked again.
        gr.on([run.click, example.change, backbone.change, checkpoint_a.change,
               checkpoint_b.change, upload_a.change, upload_b.change, image.change,
               methods.change, target.input,
               false_class.input], lambda: None, None, downloads, queue=False,
              api_visibility="private")
        prepare.click(prepare_downloads, inputs, downloads, api_name="downloads",
                      concurrency_limit=CONCURRENCY_LIMIT)
    # The files the layout itself shows (the example gallery) are never swept.
    app_space().protected = lambda path: any(
        str(path) in getattr(block, "keep_in_cache", ()) for block in page.blocks.values())
    return page


def credentials(text: str) -> tuple[str, str]:
    user, _, password = text.partition(":")
    if not user or not password:
        raise argparse.ArgumentTypeError("write --auth USER:PASSWORD")
    return user, password


def command_line() -> argparse.ArgumentParser:
    """The app's options; host and port default to Gradio's own variables (what Hugging Face
    Spaces and containers set), and a flag given wins over them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"CAM Studio {__version__}")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to bind (default $GRADIO_SERVER_NAME, else 127.0.0.1; "
                        "anything but loopback, or --share, turns on the shared-app rules below)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)),
                        help="port (default $GRADIO_SERVER_PORT, else 7860)")
    parser.add_argument("--share", action="store_true", help="also open a public Gradio link "
                        "(use --auth with it)")
    parser.add_argument("--auth", type=credentials, metavar="USER:PASSWORD",
                        help="require this login (Gradio's auth)")
    parser.add_argument("--data-root", type=Path, metavar="DIR",
                        help="the only server folder (and below) the Fine-tune and Evaluate tabs "
                             "may read; a shared app without it reads none")
    parser.add_argument("--max-upload-mb", type=float, default=MAX_UPLOAD_MB,
                        help=f"largest upload accepted (default {MAX_UPLOAD_MB:g} MB)")
    parser.add_argument("--max-steps", type=int, help="steps per fine-tuning run (default: "
                        f"{SHARED_MAX_STEPS} on a shared app, no limit on loopback)")
    parser.add_argument("--max-images", type=int, help="images per evaluation (default: "
                        f"{SHARED_MAX_IMAGES} on a shared app, no limit on loopback)")
    return parser


def main() -> None:
    parser = command_line()
    args = parser.parse_args()
    try:
        access = configure(args.host, args.share, args.data_root, args.max_steps, args.max_images)
    except UserInputError as error:
        parser.error(str(error))
    page = build_page()
    # Jobs (fine-tuning, evaluation) run one at a time (their events' concurrency_limit=1).
    page.queue(max_size=64).launch(server_name=args.host, server_port=args.port, share=args.share,
                                   auth=args.auth, max_file_size=int(args.max_upload_mb * 1e6),
                                   css=PAGE_CSS,
                                   show_error=not access.remote)


if __name__ == "__main__":
    main()
