"""The Fine-tune tab: its layout, and its events wired to ``cam_studio.tabs.finetune``."""

from __future__ import annotations

import dataclasses
import time

import gradio as gr

from cam_studio.page.handlers import handler
from cam_studio.tabs import finetune
from cam_studio.tabs.compare import backbone_choices
from cam_studio.tabs.finetune import TrainRequest
from cam_studio.tabs.jobs import job_for, start_job
from cam_studio.tabs.words import public_message
from cams.engine import SUPERVISED_METHODS
from cams.errors import UserInputError
from fooling.objectives import OBJECTIVES
from fooling.sham import DEFAULT_ENTROPY_NATS
from fooling.train import free_run_name


def preview_sham(backbone, size):
    try:
        picture, caption = finetune.sham_preview(backbone, size, DEFAULT_ENTROPY_NATS)
    except UserInputError as error:
        return None, public_message(error)
    return picture, caption


def refresh_inits(backbone, init):
    choices = finetune.init_choices(backbone)
    valid = {value for _, value in choices}
    return gr.update(choices=choices, value=init if init in valid else choices[0][1])


def follow(job):
    """The run's status and curves every second until it ends, then once more. Each look
    tells the run it is watched: when the client goes, Gradio stops asking, and a run nobody
    follows is cancelled a minute later (``cam_studio.tabs.jobs.UNWATCHED_S``)."""
    while job is not None and job.running:
        job.watch()
        yield job, *finetune.report(job)
        time.sleep(1.0)
    yield job, *finetune.report(job)


@handler(TrainRequest)
def start_training(request: TrainRequest):
    """Start a run (its name is checked first, so no training is lost to a clash) and stream
    its status and curves until it ends (Cancel stops it). Every parameter has the tab's start
    value as its default. The page keeps the run's token to find it again after a reload."""
    config, scratch = finetune.training_config(request)
    job = start_job(config, resume=bool(request.resume), scratch=scratch)
    for shown in follow(job):
        yield job.token, *shown


def reattach(token):
    """After a reload: the run this browser started with its name, its curves so far and on
    (Cancel and Resume work again); else nothing changes (the name box was made free on load)."""
    job = job_for(token)
    shown_name = job.config.name if job is not None else gr.skip()
    for shown in follow(job):
        yield shown_name, *shown


def next_name(name):
    """A name no checkpoint has yet: the box's own (left as it is, so that a name typed while
    this ran is kept), else its first free NAME-2, NAME-3, …"""
    free = free_run_name((name or "").strip() or finetune.START.name)
    return gr.skip() if free == name else free


def cancel_training(job):
    if job is not None:
        job.cancel()


def build_finetune_tab(page: gr.Blocks, pickers: list, refresh_pickers,
                       token: gr.BrowserState) -> None:
    """Fine-tune: train with any of the objectives, watch it, find it in Compare (its
    ``pickers`` are refreshed by ``refresh_pickers`` when a run ends). ``token`` keeps the run's
    token in the browser (made outside the tabs: a tab not yet shown does not read it at load)."""
    start_values = finetune.START
    with gr.Row():
        with gr.Column(scale=1, min_width=340):
            with gr.Row():
                start = gr.Button("Start", variant="primary")
                cancel = gr.Button("Cancel (saves a resumable state)", variant="stop")
            name = gr.Textbox(start_values.name, label="Checkpoint name (a free one is suggested)")
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
        with gr.Column(scale=2):
            status = gr.Markdown("No run yet.", label="Status", elem_id="train-status")
            with gr.Row():
                loss_plot = gr.Plot(label="Training loss", elem_id="loss-plot")
                metric_plot = gr.Plot(label="Validation (held-out images)")
            sham = gr.Image(label="SHAM preview", height=220, interactive=False)
            sham_caption = gr.Markdown()
    components = {"name": name, "backbone": backbone, "init": init, "loss": loss, "cam": cam,
                  "source": source, "folder": folder, "salience": salience, "upload": upload,
                  "steps": steps, "batch": batch, "size": size, "lr": lr, "seed": seed,
                  "resume": resume}
    inputs = [components[field.name] for field in dataclasses.fields(TrainRequest)]
    job = gr.State(None)
    gr.on([backbone.change, size.change], preview_sham, [backbone, size], [sham, sham_caption],
          api_visibility="private")
    backbone.change(refresh_inits, [backbone, init], init, api_visibility="private")
    shown = [job, status, loss_plot, metric_plot]
    run = start.click(start_training, inputs, [token, *shown], api_name="train",
                      concurrency_limit=1)
    # A finished run appears in the Compare tab's pickers (and as a starting point here), and the
    # name box offers the next free name.
    def after_the_run(event):
        event.then(refresh_pickers, pickers, pickers, api_visibility="private").then(
            refresh_inits, [backbone, init], init, api_visibility="private").then(
            next_name, name, name, api_visibility="private")

    after_the_run(run)
    cancel.click(cancel_training, job, None, api_visibility="private", queue=False)
    page.load(preview_sham, [backbone, size], [sham, sham_caption], api_visibility="private")
    # a reloaded page follows its run to the end, then does what the Start button's chain does
    # at once (not queued behind the page's other work, so it never overwrites what a user types)
    page.load(next_name, name, name, queue=False, api_visibility="private")
    after_the_run(page.load(reattach, token, [name, *shown], api_visibility="private"))
