"""The Compare tab: its layout, and its events wired to ``cam_studio.tabs.compare``.

Every comparison handler takes one ``CompareRequest`` (``handler``), built from the components
listed in the request's field order (``request_inputs``).
"""

from __future__ import annotations

import dataclasses

import gradio as gr

from cam_studio.data.examples import EXAMPLES, example_thumbnails
from cam_studio.page.handlers import handler, shown_errors, while_connected
from cam_studio.tabs.access import ACCESS
from cam_studio.tabs.batching import MAX_BATCH
from cam_studio.tabs.compare import (
    FOOLING_CASES,
    NONE,
    RESULTS_BUDGET,
    RESULTS_SIZE,
    BackboneCache,
    CompareRequest,
    LruCache,
    backbone_choices,
    checkpoint_choices,
    entry_bytes,
    example_choices,
    link_query,
    link_request,
    link_view,
    predictions_markdown,
    run_compare,
)
from cam_studio.tabs.comparison import TABLE_COLUMNS
from cam_studio.tabs.progress import stage_progress
from cam_studio.tabs.tempspace import app_space
from cam_studio.tabs.verdict import verdict, verdict_markdown
from cam_studio.tabs.words import public_message
from cams.backbones import CLEAN_WEIGHTS, DEFAULT_BACKBONE, WEIGHT_SUFFIXES
from cams.errors import FALSE_CLASS, TARGET, UserInputError
from cams.methods import DEFAULT_METHODS, MANY_PASS_KINDS, METHOD_NAMES, METHODS, TARGETS
from cams.render import COLORMAPS

# Requests in progress at once (more wait in Gradio's queue): two batches' worth, so that the
# next batch gathers while one computes (``cam_studio.tabs.batching``).
CONCURRENCY_LIMIT = 2 * MAX_BATCH

# The newcomer's four words, at the top of the tab (the method list is at the bottom).
INTRO = ("**What am I looking at?** A **CAM** (class activation map) colours the parts of the "
         "image that drove the model's answer. **Passive fooling** fine-tunes a model so that "
         "its answers stay the same while its CAMs change — here toward a **SHAM** "
         "(Salience-Hoax Activation Map), a fake map along the image's border. **DiffGradCAM** "
         "explains the difference between the answer and its rivals, which a change that is the "
         "same for every class cannot move. Press a ▶ case: A is the clean model, B a fooled "
         "one, and the verdict under the maps says what happened.")
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
# The link box holds the query; the browser prefixes its own address (behind a proxy or a share
# link the server does not know it).
LINK_JS = "(query) => query.startsWith('?') ? location.origin + location.pathname + query : query"
# The unticked methods are opt-in; those of many passes per image are named as slow.
METHODS_LABEL = ("Methods (unticked: opt-in; slow, many passes per image: "
                 + ", ".join(name for name in METHOD_NAMES if METHODS[name].kind in MANY_PASS_KINDS)
                 + ")")

results = LruCache(RESULTS_SIZE, RESULTS_BUDGET, entry_bytes)
# A model evicted from memory takes its cached comparisons with it (they would pin it).
cache = BackboneCache(on_evict=lambda backbone: results.discard(
    lambda entry: any(held is backbone for held in entry.backbones)))


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
    without a restart); a selection that no longer exists falls back to clean / none, one that
    does is not touched."""
    choices_a = checkpoint_choices(backbone)
    choices_b = checkpoint_choices(backbone, allow_none=True)
    valid_a = {value for _, value in choices_a}
    valid_b = {value for _, value in choices_b}
    # A valid selection is left out of the answer: the values read may be stale by the time it
    # lands (a ▶ case pressed meanwhile set new ones), and only the choices are news.
    return (gr.update(choices=backbone_choices()),
            gr.update(choices=choices_a, **({} if checkpoint_a in valid_a
                                            else {"value": CLEAN_WEIGHTS})),
            gr.update(choices=choices_b, **({} if checkpoint_b in valid_b else {"value": NONE})))


WARNING_SECONDS = 8  # a page's warning fades (on a phone, repeated ones would cover the page)


@handler(CompareRequest)
def explain(request: CompareRequest, progress=gr.Progress()):  # noqa: B008 (Gradio idiom)
    """The API's comparison: image + settings in; data out: the grid (JPEG), the table (rows of
    quantity, method, A, B, A vs B; numbers as numbers) and the predictions (each checkpoint's
    top-5 and whether A and B agree). Every parameter has a default (``None`` = the page's
    default), so a call may give only the image:
    ``client.predict(handle_file("cat.png"), api_name="/explain")``. The files (grid PNG, maps,
    CSV) come from ``/downloads``."""
    response = run_compare(cache, request, stage_progress(while_connected(progress)), results)
    return response.display, response.table, response.predictions


@handler(CompareRequest)
def show(request: CompareRequest, progress=gr.Progress()):  # noqa: B008 (Gradio idiom)
    """The page's comparison: ``explain``'s data as the page shows it, and the class pickers'
    choices (A's top-5, then every class, by index). The downloads are written only when asked
    for."""
    reset: dict[str, dict] = {}  # a mistyped class picker is cleared; others keep what was typed
    report = stage_progress(while_connected(progress))
    try:
        response = run_compare(cache, request, report, results)
    except UserInputError as error:
        # A mistyped class: one line, and the comparison with that picker blank (top-1 or the
        # strongest rival), so the page keeps working; any other mistake keeps the last result.
        wrong = {fix.input for fix in error.fixes} & {TARGET, FALSE_CLASS}
        message = public_message(error)
        gr.Warning(message + (": showing the default class instead" if wrong else ""),
                   duration=WARNING_SECONDS)
        if not wrong:  # the line stays under the grid until a comparison works again
            return (gr.skip(), f"**Not updated**: {message}. The maps show the last comparison "
                    "that worked.", gr.skip(), gr.skip(), gr.skip(), gr.skip())
        request = dataclasses.replace(request, **dict.fromkeys(wrong, None))
        reset = {field: {"value": None} for field in wrong}
        response = run_compare(cache, request, report, results)
    choices = response.class_choices
    comparison = response.comparison
    names = comparison.backbones[0].class_names
    alt = (f"CAMs of the image for class {names[comparison.target]}: each method's map by "
           + " and by ".join(comparison.labels) + ", method by method")
    left_out = f"\n\n*{response.left_out_line}*" if response.left_out else ""
    return (gr.update(value=response.display, alt_text=alt),
            verdict_markdown(verdict(comparison)) + left_out,
            response.table_text, predictions_markdown(response.predictions),
            gr.update(choices=choices, **reset.get(TARGET, {})),
            gr.update(choices=choices, **reset.get(FALSE_CLASS, {})))


@handler(CompareRequest)
def prepare_downloads(request: CompareRequest):
    """The comparison's files, written on demand (the same inputs as ``explain``; from the
    result cache when the comparison was just shown): grid PNG, maps NPZ, table CSV."""
    return run_compare(cache, request, results=results, downloads=True).files


@handler(CompareRequest, leading=1)
def enlarge(method, request: CompareRequest):
    """One method's A and B maps, large, for the A | B slider (from the result cache)."""
    if not method or not request.compares_b:
        return None
    return run_compare(cache, request, results=results, view=method).views


def case_loader(case):
    """A teaching case's button: its example, backbone and checkpoints, the default methods,
    GradCAM in the slider, no upload."""
    def load():
        return (None, case.example, case.backbone, case.checkpoint_a, case.checkpoint_b,
                list(DEFAULT_METHODS), "GradCAM")
    return load


def open_link(request: gr.Request):
    """The page as a link describes it (``?example=…&b=…``): every setting's value; then the ▶
    cases become clickable (one clicked before would be undone by these settings). The pickers'
    choices are read afresh later (``refresh_pickers``): a Dropdown given choices and a value
    together applies the value a moment after the other settings, and the comparisons their
    change events start would be of the page's default B."""
    query = dict(request.query_params) if request else {}
    asked = link_request(query)
    return (*[gr.update(interactive=True)] * len(FOOLING_CASES),
            asked.backbone, asked.checkpoint_a, asked.checkpoint_b,
            asked.example, asked.target, asked.false_class,
            list(asked.methods or DEFAULT_METHODS), asked.opacity, asked.colormap,
            asked.signed, asked.large, asked.faithfulness, link_view(query), list(asked.targets))


@handler(CompareRequest, leading=1)
def comparison_link(view, request: CompareRequest):
    if request.image:
        return "Links reopen bundled examples; an uploaded image is not kept on the server."
    return link_query(request, view)


def build_compare_tab(page: gr.Blocks) -> list[gr.components.Component]:
    """The Compare tab in ``page``; returns its backbone and checkpoint pickers (another tab
    refreshes them when it adds a checkpoint)."""
    # The teaching cases first (one click each), then the four words a newcomer needs.
    with gr.Row(elem_id="cases"):
        cases = [gr.Button(f"▶ Show {label}: A clean, B {case.checkpoint_b}",
                           variant="secondary", elem_classes=["case"], interactive=False)
                 for label, case in FOOLING_CASES.items()]
    gr.Markdown(INTRO, elem_id="intro")
    with gr.Row(elem_id="compare-row"):
        with gr.Column(scale=1, min_width=300, elem_id="compare-controls"):
            image = gr.Image(type="filepath", label="Image (upload or paste)",
                             sources=["upload", "clipboard"], height=240)
            image.preprocess = uploaded_path
            # In the app's own temporary space (it goes with the app; before, every page left a
            # folder of thumbnails in /tmp). Gradio serves its cached copies, which stay.
            thumbnails = example_thumbnails(app_space().folder("examples"))
            gallery = gr.Gallery(thumbnails, label="Examples (click one)", columns=5, height=130,
                                 allow_preview=False, object_fit="cover", elem_id="examples")
            example = gr.Dropdown(example_choices(), value="chelsea",
                                  label="…or a bundled example (used when no image)")
            backbone = gr.Dropdown(
                backbone_choices(), value=DEFAULT_BACKBONE, allow_custom_value=True,
                label="Backbone (or type a timm name, hf-hub:OWNER/REPO, torchvision:NAME)")
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
            with gr.Accordion("Upload your own checkpoints (.safetensors, .pth)", open=False):
                with gr.Row():
                    upload_a = gr.File(label="A: upload weights", type="filepath",
                                       file_types=list(WEIGHT_SUFFIXES), elem_id="upload-a")
                    upload_b = gr.File(label="B: upload weights", type="filepath",
                                       file_types=list(WEIGHT_SUFFIXES), elem_id="upload-b")
                gr.Markdown("A `.pth` / `.pt` / `.bin` is read as a state dict of tensors only "
                            "(nothing in it is run). Changing the backbone clears the uploads.")
                # Your own model: what its file may not say (local use only: a shared app
                # offers its own models).
                with gr.Group(visible=not ACCESS.remote):
                    class_names = gr.Textbox(
                        label="Class names (one per line, or comma-separated; blank: the "
                              "file's or the model's)", lines=2, elem_id="class-names")
                    with gr.Row():
                        input_size = gr.Number(None, label="Input size px (blank: the model's)",
                                               precision=0, minimum=0, elem_id="input-size")
                        layer = gr.Textbox(label="Target layer (blank: the usual one)",
                                           placeholder="e.g. layer4 or blocks.11.norm1",
                                           elem_id="layer")
                    with gr.Row():
                        mean = gr.Textbox(label="Mean R, G, B (blank: the model's)",
                                          placeholder="0.485, 0.456, 0.406", elem_id="mean")
                        std = gr.Textbox(label="Std R, G, B (blank: the model's)",
                                         placeholder="0.229, 0.224, 0.225", elem_id="std")
            with gr.Row():
                # Choices are (label, class index): the index is what the handler receives; a
                # typed value is a class name or an index.
                target = gr.Dropdown(
                    [], value=None, allow_custom_value=True, filterable=True,
                    label="Target class: A's top-5, or type to search all (blank = top-1)")
                false_class = gr.Dropdown(
                    [], value=None, allow_custom_value=True, filterable=True,
                    label="False class (blank = strongest rival)")
            methods = none_is_default(gr.CheckboxGroup(
                list(METHOD_NAMES), value=list(DEFAULT_METHODS),
                label=METHODS_LABEL))
            targets = gr.CheckboxGroup(
                list(TARGETS), value=[], elem_id="targets",
                label="…each ticked gradient method also explaining (its map of y_c minus the "
                      "mean, max or log-mean-exp of the other logits, or Finer-CAM's nearest "
                      "classes; same pass)")
            opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Heatmap opacity")
            with gr.Row():
                colormap = gr.Dropdown([(f"{name}: {why}", name) for name, why in
                                        COLORMAPS.items()], value="jet", label="Colour map")
                large = gr.Checkbox(False, label="Large (projector, phone): two methods per "
                                                 "row, big captions")
            signed = gr.Radio(
                [("min-max, jet", "minmax"), ("signed: blue < 0 = white < red", "diverging")],
                value="minmax", label="TrueClassCAM, FalseClassCAM, DifferenceSalience")
            faithfulness = gr.Checkbox(
                False, label="Faithfulness rows: deletion / insertion AUC and ROAD of every map "
                             "(per checkpoint 16 forward passes of every distinct map at once "
                             "and 6 imputations per map: 15–40 s for A and B with the default "
                             "methods on a 2-core CPU; the bar counts maps through passes, an "
                             "imputation as 4)",
                elem_id="faithfulness")
            run = gr.Button("Compare", variant="primary")
        with gr.Column(scale=4, min_width=300, elem_id="compare-results"):
            # No label badge over the grid (it covered the first row's name); the label stays for
            # screen readers.
            grid = gr.Image(label="CAMs: one row per checkpoint", type="filepath",
                            interactive=False, elem_id="grid", show_label=False,
                            alt_text="CAMs of the image by each checkpoint, method by method",
                            buttons=["download", "fullscreen"])
            verdict_panel = gr.Markdown(verdict_markdown(None), elem_id="verdict")
            with gr.Row():
                view_method = gr.Dropdown(list(METHOD_NAMES), value="GradCAM", scale=1,
                                          label="One method large, A | B (drag the slider; "
                                                "needs B)")
                slider = gr.ImageSlider(type="filepath", label="A (left) | B (right)", scale=3,
                                        elem_id="slider", max_height=720)
            predictions = gr.Markdown(label="Top-5 predictions")
            table = gr.Dataframe(headers=list(TABLE_COLUMNS), label="MSE and entropy",
                                 interactive=False, wrap=True, elem_id="table",
                                 column_widths=["34%", "24%", "14%", "14%", "14%"])
            prepare = gr.Button("Prepare downloads: grid PNG, maps NPZ, table CSV", size="sm")
            downloads = gr.File(label="Downloads", file_count="multiple", interactive=False)
            link = gr.Textbox(label="Link to this comparison", elem_id="link",
                              interactive=False, buttons=["copy"])
            # What the /explain API answers with (never shown on the page).
            with gr.Group(visible=False):
                api_trigger = gr.Button()
                api_grid = gr.Image(type="filepath", label="grid")
                api_table = gr.Dataframe(headers=list(TABLE_COLUMNS), label="table")
                api_predictions = gr.JSON(label="predictions")
    gr.Markdown(EXPLAINER)

    components = {"image": image, "example": example, "backbone": backbone,
                  "checkpoint_a": checkpoint_a, "upload_a": upload_a,
                  "checkpoint_b": checkpoint_b, "upload_b": upload_b, "target": target,
                  "false_class": false_class, "methods": methods, "opacity": opacity,
                  "faithfulness": faithfulness, "signed": signed, "colormap": colormap,
                  "large": large, "class_names": class_names, "input_size": input_size,
                  "mean": mean, "std": std, "layer": layer, "targets": targets}
    # The request's fields, in order: what every comparison handler is called with.
    inputs = [components[field.name] for field in dataclasses.fields(CompareRequest)]
    outputs = [grid, verdict_panel, table, predictions, target, false_class]
    pickers = [backbone, checkpoint_a, checkpoint_b]
    gallery.select(pick_example, None, [example, image], api_visibility="private")
    gr.on([backbone.change, refresh.click], shown_errors(refresh_pickers), pickers, pickers,
          queue=False, api_visibility="private")
    # Another backbone: the uploads were weights of the last one.
    backbone.input(lambda: (None, None), None, [upload_a, upload_b], queue=False,
                   api_visibility="private")

    def then_slider_and_link(comparison):
        """After a comparison: the A | B slider, then the link (its query, then the address the
        browser sees)."""
        comparison.then(enlarge, [view_method, *inputs], slider, api_visibility="private").then(
            comparison_link, [view_method, *inputs], link, api_visibility="private").then(
            None, link, link, js=LINK_JS, api_visibility="private")

    # The API's endpoint: data only (a hidden trigger; registered first to keep its name).
    api_trigger.click(explain, inputs, [api_grid, api_table, api_predictions], api_name="explain",
                      concurrency_limit=CONCURRENCY_LIMIT)
    shown = gr.on([run.click, example.change, backbone.change, checkpoint_a.change,
                   checkpoint_b.change, upload_a.change, upload_b.change, image.change,
                   methods.change, targets.change, opacity.release, target.input,
                   false_class.input, faithfulness.change, signed.change, colormap.change, large.change,
                   class_names.blur, input_size.blur, mean.blur, std.blur, layer.blur],
                  show, inputs, outputs, api_visibility="private",
                  concurrency_limit=CONCURRENCY_LIMIT,
                  # A burst of changes runs once more with the latest inputs, after the running
                  # request, so an older, slower result never overwrites a newer one.
                  trigger_mode="always_last")
    then_slider_and_link(shown)
    # Opening the page: the pickers (and any settings a link carries), then the comparison
    # (registered after the public endpoint, so that it keeps the name "explain").
    opened = page.load(
        open_link, None, [*cases, backbone, checkpoint_a, checkpoint_b, example, target,
                          false_class, methods, opacity, colormap, signed, large, faithfulness,
                          view_method, targets],
        queue=False, api_visibility="private").then(
        show, inputs, outputs, api_visibility="private")
    then_slider_and_link(opened)
    opened.then(shown_errors(refresh_pickers), pickers, pickers, queue=False,
                api_visibility="private")
    view_method.change(enlarge, [view_method, *inputs], slider, api_visibility="private",
                       concurrency_limit=CONCURRENCY_LIMIT).then(
        comparison_link, [view_method, *inputs], link, api_visibility="private").then(
        None, link, link, js=LINK_JS, api_visibility="private")
    for button, case in zip(cases, FOOLING_CASES.values(), strict=True):
        then_slider_and_link(button.click(
            case_loader(case), None, [image, example, backbone, checkpoint_a, checkpoint_b,
                                      methods, view_method], queue=False,
            api_visibility="private").then(show, inputs, outputs, api_visibility="private"))
    # New settings make the offered files stale: clear them until asked again.
    gr.on([run.click, example.change, backbone.change, checkpoint_a.change, checkpoint_b.change,
           upload_a.change, upload_b.change, image.change, methods.change, targets.change,
           target.input,
           false_class.input, faithfulness.change, signed.change, colormap.change, large.change,
           opacity.release], lambda: None, None, downloads, queue=False,
          api_visibility="private")
    prepare.click(prepare_downloads, inputs, downloads, api_name="downloads",
                  concurrency_limit=CONCURRENCY_LIMIT)
    return pickers
