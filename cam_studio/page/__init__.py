"""CAM Studio's page: every CAM of a clean (A) and a fooled (B) checkpoint, side by side.

    python app.py [--host 127.0.0.1] [--port 7860] [--share]   (or the cam-studio command)

The page only builds its tabs (``build_*_tab``, one module per tab) and wires their events to the
tabs' backends in ``cam_studio.tabs`` (no computation here); the API endpoints (``/explain``,
``/downloads``, ``/train``, ``/evaluate``) serve the same computations to ``gradio_client``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from cam_studio.tabs.tempspace import KEEP_S, SERVED, app_space

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Gradio's copies of the files it serves, and uploads, go to the app's own temporary space, which
# is kept to a bounded size (cam_studio/tabs/tempspace.py); Gradio reads this when it is imported.
# A deployer's GRADIO_TEMP_DIR (Docker, Spaces) holds the space, so nothing lands unswept.
if os.environ.get("GRADIO_TEMP_DIR") and not os.environ.get("CAMS_TEMP_DIR"):
    os.environ["CAMS_TEMP_DIR"] = str(Path(os.environ["GRADIO_TEMP_DIR"]) / "cam-studio")
os.environ["GRADIO_TEMP_DIR"] = str(app_space().folder(SERVED))

import gradio as gr

from cam_studio.page.compare import build_compare_tab, refresh_pickers
from cam_studio.page.evaluate import build_evaluate_tab
from cam_studio.page.fairness import MAX_QUEUED_PER_USER, QUEUE_SIZE, cap_per_session
from cam_studio.page.finetune import build_finetune_tab
from cam_studio.page.headers import header_middleware
from cam_studio.page.login import Login
from cam_studio.page.memory import give_memory_back
from cam_studio.page.uploads import CEILING_MB, upload_middleware
from cam_studio.tabs.access import (
    SHARED_MAX_COMPARE_SECONDS,
    SHARED_MAX_IMAGES,
    SHARED_MAX_MINUTES,
    SHARED_MAX_STEPS,
    configure,
)
from cam_studio.tabs.logs import LOG_LEVELS, start_logging
from cams import __version__
from cams.checkpoints import tidy_registry
from cams.errors import UserInputError

MAX_UPLOAD_MB = 200.0  # an image, a ResNet-50 / ConvNeXt-T checkpoint in float32, a dataset zip
# On a phone the columns stack: the results come first, the controls below them.
# Nothing wider than the screen: images scale down to their box, tables scroll inside theirs.
PAGE_CSS = """
#grid img, #slider img { max-width: 100%; height: auto; }
#table { max-width: 100%; overflow-x: auto; }
#verdict { font-size: 1.05em; }
@media (max-width: 900px) {
  #compare-row { flex-direction: column; }
  #compare-results { order: 1; min-width: 0 !important; width: 100%; }
  #compare-controls { order: 2; min-width: 0 !important; width: 100%; }
  #cases { flex-direction: column; }
  .gradio-container { padding-left: 4px !important; padding-right: 4px !important; }
}
"""

# Chromium makes every scrollable box a tab stop, so a dropdown's (scrollable) option list took
# the focus on Tab and, closing, dropped it to <body>: option lists are reached by the arrow
# keys instead, and Tab goes from one control to the next. Images Gradio shows without alt text
# (the A | B slider's two sides, a gallery's plots, the SHAM preview) get one from where they
# are: the slider's side, else their component's label.
PAGE_HEAD = """<script>
new MutationObserver(() => {
  document.querySelectorAll('ul[role="listbox"]:not([tabindex])')
    .forEach((list) => list.setAttribute('tabindex', '-1'));
  document.querySelectorAll('#slider img:not([alt]), #slider img[alt=""]').forEach((img, i) =>
    img.setAttribute('alt', i === 0 ? 'A (left): the chosen method, large'
                                    : 'B (right): the chosen method, large'));
  document.querySelectorAll('.gradio-container img:not([alt]), .gradio-container img[alt=""]')
    .forEach((img) => {
      const block = img.closest('.block');
      const label = block && block.querySelector('[data-testid="block-label"], label');
      img.setAttribute('alt', (label && label.textContent.trim()) || 'a result image');
    });
}).observe(document.documentElement, {childList: true, subtree: true, attributes: true,
                                      attributeFilter: ['src']});
</script>"""


def build_page() -> gr.Blocks:
    # Served files (grids, downloads, uploads) older than KEEP_S go: Gradio's own sweep every
    # minute, and the app's space's by age and size on every comparison (tabs/tempspace.py).
    with gr.Blocks(title="CAM Studio", analytics_enabled=False,
                   delete_cache=(60, KEEP_S)) as page:
        gr.Markdown("# CAM Studio\nEvery CAM of a clean (A) and a fooled (B) checkpoint, "
                    "side by side, with the MSE between them.")
        run_token = gr.BrowserState(None, storage_key="cams-finetune-run")
        with gr.Tab("Compare"):
            pickers = build_compare_tab(page)
        with gr.Tab("Fine-tune"):
            build_finetune_tab(page, pickers, refresh_pickers, run_token)
        with gr.Tab("Evaluate"):
            build_evaluate_tab(page)
    # The files the layout itself shows (the example gallery) are never swept.
    app_space().protected = lambda path: any(
        str(path) in getattr(block, "keep_in_cache", ()) for block in page.blocks.values())
    return page


log = logging.getLogger("cam_studio.page")

def sweep_forever(every_s: float = 30.0) -> None:
    """Sweep the temporary space every ``every_s`` seconds, whatever the traffic."""
    while True:
        time.sleep(every_s)
        try:
            app_space().sweep()
        except OSError as error:  # a full or vanished disk must not end the sweeper
            log.warning("sweeping the temporary space failed: %s", error)


def credentials(text: str) -> tuple[str, str]:
    user, _, password = text.partition(":")
    if not user or not password:
        raise argparse.ArgumentTypeError("write --auth USER:PASSWORD")
    return user, password


def command_line() -> argparse.ArgumentParser:
    """The app's options; host and port default to Gradio's own variables (what Hugging Face
    Spaces and containers set), and a flag given wins over them."""
    parser = argparse.ArgumentParser(prog="app.py", description=__doc__.splitlines()[0])
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
    parser.add_argument("--log-level", default="WARNING", type=str.upper,
                        choices=LOG_LEVELS, help="what the app logs to stderr (default WARNING: "
                        "problems only; INFO: every request with its time, job starts and ends)")
    parser.add_argument("--max-job-minutes", type=float, help="an evaluation's estimated time "
                        f"(default: {SHARED_MAX_MINUTES} min on a shared app, no limit on "
                        "loopback)")
    parser.add_argument("--max-temp-mb", type=float, default=CEILING_MB,
                        help="uploads are refused while the temporary space holds more than this "
                        f"(default {CEILING_MB:g} MB; swept to 60 MB as files age)")
    parser.add_argument("--max-queued-per-user", type=int, default=MAX_QUEUED_PER_USER,
                        help="requests one page or API client may have waiting or running "
                        f"(default {MAX_QUEUED_PER_USER}, of a queue of {QUEUE_SIZE})")
    parser.add_argument("--max-compare-seconds", type=float, help="a comparison's time, stopped "
                        f"with a one-line error past it (default: {SHARED_MAX_COMPARE_SECONDS} s "
                        "on a shared app, no limit on loopback)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """``python app.py`` and the ``cam-studio`` console script."""
    parser = command_line()
    args = parser.parse_args(argv)
    start_logging(args.log_level)
    # A stop by SIGTERM (a service manager, a container, `kill`) exits as Ctrl-C does, so the
    # exit's clean-up runs: the app's temporary space goes with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    give_memory_back()  # before the server's threads: they share two heaps
    try:
        access = configure(args.host, args.share, args.data_root, args.max_steps, args.max_images,
                           args.max_job_minutes, args.max_compare_seconds)
    except UserInputError as error:
        parser.error(str(error))
    for removed in tidy_registry():  # what saves killed mid-way left (older than an hour)
        log.warning("removed a killed save's temporary file %s", removed.name)
    sweeper = threading.Thread(target=sweep_forever, daemon=True, name="temp-sweeper")
    sweeper.start()  # uploads alone (no comparison) are swept too
    page = build_page()
    # Jobs (fine-tuning, evaluation) run one at a time (their events' concurrency_limit=1); one
    # session holds at most --max-queued-per-user places of the queue.
    page.queue(max_size=QUEUE_SIZE)
    cap_per_session(page._queue, args.max_queued_per_user)
    page.launch(server_name=args.host, server_port=args.port, share=args.share,
                auth=Login(*args.auth) if args.auth else None,
                max_file_size=int(args.max_upload_mb * 1e6),
                css=PAGE_CSS, head=PAGE_HEAD, show_error=not access.remote,
                app_kwargs={"middleware": header_middleware()
                            + upload_middleware(args.max_temp_mb)})
